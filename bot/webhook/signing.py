"""HMAC-SHA256 request signatures, for engine requests in and pushes out.

Signature = "sha256=" + hex(HMAC-SHA256(secret, "<timestamp>.<raw body>")), with the
Unix timestamp in X-Paramadapt-Timestamp; more than 5 minutes off is refused.
"""

from __future__ import annotations

import hashlib
import hmac

TIMESTAMP_HEADER = "X-Paramadapt-Timestamp"
SIGNATURE_HEADER = "X-Paramadapt-Signature"
MAX_SKEW_SECONDS = 300
MAX_DIGITS = 12  # Unix seconds have 10 digits until the year 2286


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def signed_headers(secret: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: sign(secret, timestamp, body)}


def verify(
    secret: str, timestamp: str | None, signature: str | None, body: bytes, now: float
) -> str | None:
    """None when the request is authentic; otherwise what is wrong with it."""
    if not timestamp or not signature:
        return f"missing {TIMESTAMP_HEADER} or {SIGNATURE_HEADER} header"
    # ASCII digits only ("²" is a digit to str.isdigit() but not to int()), and no more of
    # them than a timestamp has: a 5,000-digit "number" is refused before int() reads it.
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= MAX_DIGITS):
        return (
            f"{TIMESTAMP_HEADER} must be a Unix timestamp in seconds "
            f"(1 to {MAX_DIGITS} ASCII digits)"
        )
    if abs(now - int(timestamp)) > MAX_SKEW_SECONDS:
        return f"{TIMESTAMP_HEADER} is more than 5 minutes off"
    # compare_digest refuses non-ASCII text with a TypeError: such a signature is just wrong.
    if not signature.isascii() or not hmac.compare_digest(
        sign(secret, int(timestamp), body), signature
    ):
        return "signature does not match"
    return None
