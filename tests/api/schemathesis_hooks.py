"""Schemathesis hooks for tests/api/test_openapi.py (loaded through SCHEMATHESIS_HOOKS).

Hypothesis reuses generated values, so one Idempotency-Key would be sent with different
requests (in every phase), which the API refuses with 422 as documented. Each call gets a
key of its own just before it is sent, so the header is still exercised and every request
stands on its own.
"""

from __future__ import annotations

import uuid
from typing import Any

import schemathesis

KEY = "Idempotency-Key"


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    # Negative cases are left alone: an edit here makes Schemathesis revalidate the case as
    # positive and send the headers it had removed on purpose (a 4xx is expected anyway).
    negative = case.meta is not None and case.meta.generation.mode.is_negative
    if not negative and case.headers and KEY in case.headers:
        case.headers[KEY] = f"st-{uuid.uuid4()}"
