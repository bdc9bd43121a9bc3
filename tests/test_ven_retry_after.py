"""A busy VTN: 429/503 from ``/auth/token`` and from other calls are "retry after", honoured
and bounded, never refused credentials, a crash or a tight loop (S1; issue 12). A fake server
(``httpx.MockTransport``) answers; the client's waits are recorded, not slept."""

from __future__ import annotations

import asyncio
import email.utils
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest

import drready.openadr.ven as ven_module
from drready.openadr.ven import (
    BUSY_RETRIES,
    RETRY_AFTER_DEFAULT_S,
    RETRY_AFTER_MAX_S,
    OpenAdrClient,
    VtnAuthError,
    VtnBusyError,
    poll_loop,
    retry_after_s,
)

TOKEN = {"access_token": "t-1", "token_type": "Bearer", "expires_in": 300}


class FakeVtn:
    """Answers each path from a script of (status, Retry-After or None); then 200."""

    def __init__(self, script: dict[str, list[tuple[int, str | None]]]) -> None:
        self.script = script
        self.calls: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.calls.append(path)
        queue = self.script.get(path, [])
        if queue:
            status, after = queue.pop(0)
            headers = {} if after is None else {"Retry-After": after}
            return httpx.Response(status, headers=headers, json={"status": status})
        if path == "/auth/token":
            return httpx.Response(200, json=TOKEN)
        return httpx.Response(200, json=[])


def _client(vtn: FakeVtn, waits: list[float], busy_wait_s: float = 10.0) -> OpenAdrClient:
    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    return OpenAdrClient(
        "https://vtn.test",
        "ven-1",
        "a-secret-of-enough-length",
        verify=True,
        transport=httpx.MockTransport(vtn),
        busy_wait_s=busy_wait_s,
        sleep=sleep,
    )


def _run(make: Callable[[], OpenAdrClient], call: str) -> object:
    async def go() -> object:
        client = make()
        try:
            if call == "token":
                return await client.fetch_token()
            return await client.programs()
        finally:
            await client.close()

    return asyncio.run(go())


def test_token_429_and_503_are_waited_for_then_the_token_arrives() -> None:
    vtn = FakeVtn({"/auth/token": [(429, "3"), (503, None)]})
    waits: list[float] = []
    assert _run(lambda: _client(vtn, waits), "token") == "t-1"
    assert waits == [3.0, RETRY_AFTER_DEFAULT_S]
    assert vtn.calls == ["/auth/token"] * 3


def test_token_endpoint_busy_beyond_the_budget_is_busy_not_refused_credentials() -> None:
    # a Retry-After beyond the call's budget: no wait, no retry, the wait handed up (bounded)
    vtn = FakeVtn({"/auth/token": [(429, "86400")]})
    waits: list[float] = []
    with pytest.raises(VtnBusyError) as caught:
        _run(lambda: _client(vtn, waits), "token")
    assert not isinstance(caught.value, VtnAuthError)
    assert caught.value.retry_after_s == RETRY_AFTER_MAX_S and caught.value.status == 429
    assert waits == [] and vtn.calls == ["/auth/token"]
    # busy on every attempt: BUSY_RETRIES waits, then busy — never a tight loop
    vtn = FakeVtn({"/auth/token": [(503, "1")] * 10})
    waits = []
    with pytest.raises(VtnBusyError):
        _run(lambda: _client(vtn, waits), "token")
    assert waits == [1.0] * BUSY_RETRIES and len(vtn.calls) == BUSY_RETRIES + 1
    # a real refusal stays one
    vtn = FakeVtn({"/auth/token": [(401, None)]})
    with pytest.raises(VtnAuthError) as refused:
        _run(lambda: _client(vtn, []), "token")
    assert not isinstance(refused.value, VtnBusyError)


def test_other_calls_honour_retry_after_too() -> None:
    vtn = FakeVtn({"/programs": [(429, "2"), (503, "4")]})
    waits: list[float] = []
    assert _run(lambda: _client(vtn, waits), "programs") == []
    assert waits == [2.0, 4.0]
    assert vtn.calls == ["/auth/token", "/programs", "/programs", "/programs"]
    vtn = FakeVtn({"/programs": [(503, "8"), (503, "8")]})
    waits = []
    with pytest.raises(VtnBusyError) as caught:  # 8 + 8 > the call's 10 s budget
        _run(lambda: _client(vtn, waits), "programs")
    assert waits == [8.0] and caught.value.retry_after_s == 8.0


def test_retry_after_forms_and_bounds() -> None:
    now = datetime(2026, 12, 8, 0, 0, tzinfo=UTC)

    def answer(value: str | None) -> httpx.Response:
        return httpx.Response(429, headers={} if value is None else {"Retry-After": value})

    later = email.utils.format_datetime(now + timedelta(seconds=42), usegmt=True)
    assert retry_after_s(answer(later), now) == 42.0
    assert retry_after_s(answer("0"), now) == 1.0  # at least a second: no tight loop
    assert retry_after_s(answer("-5"), now) == RETRY_AFTER_DEFAULT_S  # not delay-seconds
    assert retry_after_s(answer("soon"), now) == RETRY_AFTER_DEFAULT_S
    assert retry_after_s(answer(None), now) == RETRY_AFTER_DEFAULT_S
    assert retry_after_s(answer("9" * 40), now) == RETRY_AFTER_MAX_S
    past = email.utils.format_datetime(now - timedelta(hours=1), usegmt=True)
    assert retry_after_s(answer(past), now) == 1.0


def test_poll_loop_waits_at_least_what_a_busy_vtn_asks(monkeypatch: pytest.MonkeyPatch) -> None:
    waited: list[float] = []

    async def record(stop: object, wake: object, timeout_s: float) -> None:
        waited.append(timeout_s)

    monkeypatch.setattr(ven_module, "_wait_either", record)

    async def busy(now: datetime) -> list[str]:
        raise VtnBusyError("busy", status=429, retry_after_s=120.0)

    async def go() -> None:
        await poll_loop(busy, asyncio.Event(), logging.getLogger("t"), 10.0, max_polls=3)

    asyncio.run(go())
    # at least what the VTN asks (the doubling backoff alone would say 20, 40, 80), growing
    # from there, bounded by max_backoff_s
    assert waited == [120.0, 240.0, 300.0]
