"""Idempotency keys on SQLite and PostgreSQL: claimed once, answered again, freed, expired."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from bot.runtime import Runtime
from core.ports import KeyHolder, RequestFingerprint, StoredResponse
from storage.idempotency import ABANDONED_AFTER, KEY_TTL

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
BACKUP = RequestFingerprint("POST", "/backup-configuration", "a" * 64)
OTHER = RequestFingerprint("POST", "/backup-configuration", "b" * 64)
CREATED = StoredResponse(201, '{"id": "global-1"}')


async def test_a_claimed_key_is_held_until_its_answer_is_kept(runtime: Runtime) -> None:
    keys = runtime.idempotency
    assert await keys.claim("token:admin", "k1", BACKUP, T0) is None
    assert await keys.claim("token:admin", "k1", BACKUP, T0) == KeyHolder(BACKUP, T0, None)
    await keys.complete("token:admin", "k1", CREATED)
    assert await keys.claim("token:admin", "k1", OTHER, T0) == KeyHolder(BACKUP, T0, CREATED)


async def test_a_released_key_can_be_claimed_again(runtime: Runtime) -> None:
    keys = runtime.idempotency
    await keys.claim("token:admin", "k1", BACKUP, T0)
    await keys.release("token:admin", "k1")
    assert await keys.claim("token:admin", "k1", OTHER, T0) is None


async def test_keys_belong_to_their_client(runtime: Runtime) -> None:
    await runtime.idempotency.claim("token:admin", "k1", BACKUP, T0)
    assert await runtime.idempotency.claim("token:engine", "k1", BACKUP, T0) is None


async def test_a_key_expires_a_day_after_its_first_use(runtime: Runtime) -> None:
    keys = runtime.idempotency
    await keys.claim("token:admin", "k1", BACKUP, T0)
    await keys.complete("token:admin", "k1", CREATED)
    assert await keys.claim("token:admin", "k1", BACKUP, T0 + KEY_TTL) is not None
    assert await keys.claim("token:admin", "k1", OTHER, T0 + KEY_TTL + timedelta(seconds=1)) is None


async def test_an_abandoned_request_frees_its_key_for_the_same_request_only(
    runtime: Runtime,
) -> None:
    keys = runtime.idempotency
    await keys.claim("token:admin", "k1", BACKUP, T0)
    later = T0 + ABANDONED_AFTER + timedelta(seconds=1)
    assert await keys.claim("token:admin", "k1", OTHER, later) == KeyHolder(BACKUP, T0, None)
    assert await keys.claim("token:admin", "k1", BACKUP, later) is None


async def test_of_concurrent_claims_exactly_one_gets_the_key(runtime: Runtime) -> None:
    claims = await asyncio.gather(
        *(runtime.idempotency.claim("token:admin", "k1", BACKUP, T0) for _ in range(8))
    )
    assert sum(holder is None for holder in claims) == 1
