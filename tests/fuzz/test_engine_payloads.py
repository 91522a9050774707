"""Engine payloads over real HTTP: random shapes, types and values are refused with a 4xx
JSON body naming what was wrong (or accepted with a 2xx when they happen to be valid),
never a 5xx, and a refused request stores nothing."""

from __future__ import annotations

import copy
import json
import random
import zlib
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import text

from tests.api.conftest import Api, blocked, closed

STORED = ["blocked_trades", "trades", "candles", "overrides", "outbox", "config_versions"]
ODD_VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    1.5,
    10**30,
    -(10**30),
    1e308,
    -1e308,
    2**63,
    2**31,
    "",
    " ",
    "x" * 5000,
    "\x00",
    "a\x00b",
    "\ud7ff",
    "\ud800",
    "🚀",
    "²",
    "NaN",
    "Infinity",
    "'; DROP TABLE trades; --",
    "<!channel>",
    [],
    [1, "a"],
    {},
    {"a": {"b": [None]}},
    "2026-11-23T03:00:00",
    "2026-02-30T03:00:00+00:00",
    "9999-12-31T23:59:59-01:00",
    "0001-01-01T00:00:00+01:00",
    "２０２６-11-23T03:00:00+00:00",
    "2026-11-23T03:00:00+99:00",
]
RAW_BODIES = [
    b"",
    b"{",
    b"[]",
    b"null",
    b"42",
    b'"text"',
    b"\xff\xfe",
    b'{"price": NaN}',
    b'{"events": []}',
    b'{"events": {}}',
    b'{"events": [null]}',
    b"{" * 5000,
    b"[" * 50_000 + b"]" * 50_000,
]


def candles(**changes: Any) -> dict[str, Any]:
    bar = {
        "time": "2026-11-23T03:00:00+00:00",
        "open": 10.0,
        "high": 11.0,
        "low": 9.0,
        "close": 10.5,
        "volume": 100.0,
    }
    return {"symbol": "BTCUSDC", "timeframe": "1h", "candles": [bar], **changes}


class Mutator:
    """Seeded: a failure names the seed and the payload, and reruns the same way."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def value(self) -> Any:
        rng = self.rng
        pick = rng.random()
        if pick < 0.6:  # a copy: a shared list changed in place would come back nested in itself
            return copy.deepcopy(rng.choice(ODD_VALUES))
        if pick < 0.8:
            return "".join(chr(rng.randrange(0x20, 0x3000)) for _ in range(rng.randint(0, 12)))
        return rng.choice([rng.uniform(-1e6, 1e6), rng.randint(-(2**70), 2**70)])

    def mutate(self, document: Any) -> Any:
        """One to three changes anywhere in the document: drop, retype or add a field."""
        document = copy.deepcopy(document)
        for _ in range(self.rng.randint(1, 3)):
            document = self._change(document)
        return document

    def _change(self, node: Any) -> Any:
        rng = self.rng
        if isinstance(node, dict) and node and rng.random() < 0.8:
            key = rng.choice(list(node))
            action = rng.randrange(4)
            if action == 0:
                del node[key]
            elif action == 1:
                node[key] = self.value()
            elif action == 2:
                node[rng.choice(["confidnce", "", "\x00", "id", "events"])] = self.value()
            else:
                node[key] = self._change(node[key])
            return node
        if isinstance(node, list) and node and rng.random() < 0.8:
            index = rng.randrange(len(node))
            node[index] = self._change(node[index])
            return node
        return self.value()


Valid = Callable[[int], Any]
PAYLOADS: dict[str, Valid] = {
    "/blocked-trades": lambda n: blocked(f"fz{n}"),
    "/blocked-trades batch": lambda n: {"events": [blocked(f"fb{n}"), blocked(f"fc{n}")]},
    "/trades": lambda n: closed(f"tz{n}"),
    "/trades batch": lambda n: {"events": [closed(f"tb{n}")]},
    "/candles": lambda n: candles(),
}


async def stored(api: Api) -> dict[str, int]:
    async with api.runtime.engine.connect() as connection:
        return {
            table: (await connection.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one()
            for table in STORED
        }


def assert_explained(status: int, body: Any, what: str) -> None:
    assert 200 <= status < 500, f"{status} for {what}: {body}"
    if status >= 400:
        assert isinstance(body, dict) and isinstance(body.get("error"), str), (what, body)
        assert body["error"].strip(), what
        for problem in body.get("problems") or []:
            assert problem["field"] and problem["problem"], (what, body)


async def post(api: Api, path: str, **kwargs: Any) -> tuple[int, Any]:
    status, body, _ = await api.call("POST", path, "engine", **kwargs)
    return status, body


@pytest.mark.parametrize("endpoint", list(PAYLOADS))
async def test_random_payloads_are_refused_with_a_reason_and_store_nothing(
    api: Api, endpoint: str
) -> None:
    path = endpoint.split()[0]
    mutator = Mutator(seed=zlib.crc32(endpoint.encode()) % 1000 + 20261123)  # same every run
    for n in range(150):
        payload = mutator.mutate(PAYLOADS[endpoint](n))
        what = f"POST {path} {json.dumps(payload, default=repr)[:300]}"
        before = await stored(api)
        status, body = await post(api, path, json=payload)
        assert_explained(status, body, what)
        if status >= 400:
            assert await stored(api) == before, f"{what} was refused but stored something"


async def test_bodies_that_are_not_the_right_json_are_422(api: Api) -> None:
    before = await stored(api)
    for path in ["/blocked-trades", "/trades", "/candles"]:
        for raw in RAW_BODIES:
            headers = {"Content-Type": "application/json"}
            status, body = await post(api, path, data=raw, headers=headers)
            assert status == 422 and body["error"], (path, raw[:20], body)
    assert await stored(api) == before


@pytest.mark.parametrize(
    "field",
    ["symbol", "block_reason", "risk_level", "event_id", "data"],
)
async def test_text_postgresql_cannot_hold_is_a_422_naming_the_field(api: Api, field: str) -> None:
    value: Any = {"note": "a\x00b"} if field == "data" else "a\x00b"
    status, body = await post(api, "/blocked-trades", json=blocked(**{field: value}))
    assert status == 422, body
    assert field in json.dumps(body)
    assert (await stored(api))["blocked_trades"] == 0


async def test_an_override_id_that_is_not_a_whole_number_is_422(api: Api) -> None:
    for value in ["0", "-1", "abc", "²", "9" * 30, "%00", str(2**63)]:
        status, body = await post(api, f"/overrides/{value}/consume")
        assert status == 422, (value, body)
        assert body["problems"][0]["field"] == "id"


async def test_an_unknown_override_is_404(api: Api) -> None:
    status, body = await post(api, "/overrides/12345/consume")
    assert status == 404
    assert "12345" in body["error"]
