"""Throttling and lockout of the VTN's token endpoint (S1, issue 12 item 5): the core's decisions
against hand-computed timelines, the bounded low-priority verifier, and the endpoint over HTTP
(429 with Retry-After, lockout, scrypt never on the event loop, 503 when the verifier is full).
The load side (other clients' latency during a brute-force run) is benchmarks/token_bruteforce.py.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from drready.openadr.vtn import VtnSettings, create_app
from drready.security.throttle import TokenThrottle, TokenThrottleSettings, address_key
from drready.security.verify_pool import BoundedVerifier, VerifierBusyError
from tests.test_vtn_api import SECRETS, make_registry

SMALL = TokenThrottleSettings(
    address_burst=3,
    address_per_s=1.0,
    client_burst=2,
    client_per_s=0.5,
    failures_max=3,
    failure_window_s=10.0,
    lockout_s=5.0,
    lockout_max_s=40.0,
)

# --- the core ---------------------------------------------------------------------------------

# (time [s], client id, address, outcome of an admitted attempt or None, expected wait [s])
RATE_TIMELINE = [
    (0.0, "c", "a", True, 0.0),
    (0.0, "c", "a", True, 0.0),
    (0.0, "c", "a", None, 2.0),  # client bucket empty: 1 token at 0.5/s
    (1.0, "c", "a", None, 1.0),
    (2.0, "c", "a", True, 0.0),  # one token back; address bucket 3 - 2 + 2 = 3 → 2
    (2.0, "d", "a", True, 0.0),  # another client, same address: address bucket 2 → 1
    (2.0, "e", "a", True, 0.0),  # 1 → 0
    (2.0, "f", "a", None, 1.0),  # address bucket empty: 1 token at 1/s
    (2.0, "g", "b", True, 0.0),  # another address is unaffected
]


def test_rate_limits_follow_the_token_buckets() -> None:
    throttle = TokenThrottle(SMALL)
    for now, client, address, outcome, wait in RATE_TIMELINE:
        assert throttle.admit(client, address, now) == pytest.approx(wait), (now, client)
        if outcome is not None:
            throttle.record(client, address, success=outcome, now=now)


def test_repeated_failures_lock_the_address_and_the_client_for_growing_periods() -> None:
    s = SMALL.model_copy(update={"client_burst": 1000, "address_burst": 1000})
    throttle = TokenThrottle(s)
    now = 0.0
    expected_locks = [5.0, 10.0, 20.0, 40.0, 40.0]  # doubling, capped at lockout_max_s
    for lock in expected_locks:
        for _ in range(3):
            assert throttle.admit("c", "a", now) == 0.0
            throttle.record("c", "a", success=False, now=now)
            now += 1.0
        locked_at = now - 1.0
        assert throttle.admit("c", "a", now) == pytest.approx(locked_at + lock - now)
        assert throttle.admit("other", "a", now) > 0.0  # the address is locked
        assert throttle.admit("c", "elsewhere", now) > 0.0  # so is the client id
        assert throttle.admit("other", "elsewhere", now) == 0.0
        throttle.release("other")  # admitted, no outcome: no longer in flight
        now = locked_at + lock  # the lock has run out
        assert not throttle.locked("c", "a", now)
    # failures spread wider than the window do not lock
    for _ in range(6):
        throttle.record("c", "a", success=False, now=now)
        now += 10.0
    assert not throttle.locked("c", "a", now)


def test_a_success_or_a_long_quiet_resets_the_strikes() -> None:
    throttle = TokenThrottle(SMALL)
    for t in (0.0, 1.0, 2.0):
        throttle.record("c", "a", success=False, now=t)
    assert throttle.locked("c", "a", 3.0)
    for t in (7.0, 8.0, 9.0):  # second lockout: 10 s
        throttle.record("c", "a", success=False, now=t)
    assert throttle.locked("c", "a", 18.9) and not throttle.locked("c", "a", 19.0)
    throttle.record("c", "a", success=True, now=19.0)
    for t in (20.0, 21.0, 22.0):  # after a success: the first period again
        throttle.record("c", "a", success=False, now=t)
    assert throttle.locked("c", "a", 26.9) and not throttle.locked("c", "a", 27.0)
    for t in (100.0, 101.0, 102.0):  # 73 s ≥ lockout_max_s after the lock ended: 5 s again
        throttle.record("c", "a", success=False, now=t)
    assert throttle.locked("c", "a", 106.9) and not throttle.locked("c", "a", 107.0)


def test_a_locked_client_id_still_gets_tokens_at_its_usual_address() -> None:
    throttle = TokenThrottle(SMALL)
    throttle.record("ven", "home", success=True, now=0.0)
    for t in (1.0, 2.0, 3.0):  # someone elsewhere guesses ven's secret
        throttle.record("ven", "attacker", success=False, now=t)
    assert throttle.admit("ven", "home", 4.0) == 0.0  # the VEN itself: not locked out
    assert throttle.admit("ven", "attacker", 4.0) == pytest.approx(4.0)
    assert throttle.admit("ven", "new-place", 4.0) == pytest.approx(4.0)
    assert throttle.admit("someone", "attacker", 4.0) == pytest.approx(4.0)


def test_unknown_ids_are_keys_of_their_own() -> None:
    # a shared key for unknown ids would let a lockout tell known ids from unknown ones
    throttle = TokenThrottle(SMALL)
    for i, address in enumerate(("x", "y", "z")):
        throttle.record("ghost-1", address, success=False, now=float(i))
    assert throttle.locked("ghost-1", "w", 3.0)
    assert not throttle.locked("ghost-2", "w", 3.0)


def test_tables_are_bounded() -> None:
    throttle = TokenThrottle(SMALL.model_copy(update={"max_tracked": 16}))
    for i in range(100):
        throttle.admit(f"c{i}", f"a{i}", 0.0)
        throttle.record(f"c{i}", f"a{i}", success=False, now=0.0)
    assert len(throttle._address_buckets.items) == 16
    assert len(throttle._client_strikes.items) == 16


@pytest.mark.parametrize(
    ("host", "key"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2::99", "2001:db8:1:2::/64"),
        ("fe80::1%eth0", "fe80::/64"),
        ("testclient", "testclient"),
        ("h" * 100, "h" * 64),
    ],
)
def test_address_keys(host: str, key: str) -> None:
    assert address_key(host) == key


# --- the verifier -----------------------------------------------------------------------------


def test_verifier_runs_in_its_own_low_priority_thread_and_refuses_when_full() -> None:
    verifier = BoundedVerifier(threads=1, queue_max=1, nice=10)  # 10: visible even if already 0
    release = threading.Event()
    seen: list[tuple[str, int | None]] = []

    def work(x: int) -> int:
        nice = (
            os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
            if sys.platform == "linux"
            else None
        )
        seen.append((threading.current_thread().name, nice))
        release.wait(5)
        return x * 2

    async def scenario() -> list[int]:
        first = asyncio.ensure_future(verifier.run(work, 1))
        second = asyncio.ensure_future(verifier.run(work, 2))
        await asyncio.sleep(0.05)
        assert verifier.pending == 2
        with pytest.raises(VerifierBusyError):
            await verifier.run(work, 3)
        release.set()
        return list(await asyncio.gather(first, second))

    try:
        assert asyncio.run(scenario()) == [2, 4]
    finally:
        verifier.close()
    assert verifier.pending == 0
    base = os.getpriority(os.PRIO_PROCESS, 0) if sys.platform == "linux" else None
    for name, nice in seen:
        assert name.startswith("drready-verify")
        if base is not None:
            assert nice == max(base, 10)


# --- over HTTP --------------------------------------------------------------------------------


def _app(tmp: Path, throttle: TokenThrottleSettings) -> object:
    registry = make_registry()
    settings = VtnSettings(
        database_url=f"sqlite:///{tmp / 'vtn.db'}",
        base_url="https://vtn.test",
        token_throttle=throttle,
    )
    return create_app(settings, registry, settings.token_service(registry))


def _token(client: TestClient, who: str, secret: str) -> httpx.Response:
    form = {"grant_type": "client_credentials", "client_id": who, "client_secret": secret}
    response: httpx.Response = client.post("/auth/token", data=form)
    return response


@pytest.fixture
def locked_app(tmp_path: Path) -> Iterator[object]:
    yield _app(
        tmp_path,
        TokenThrottleSettings(
            failures_max=3,
            lockout_s=60.0,
            address_burst=1000,
            client_burst=100,
            refused_delay_s=0.3,
        ),
    )


def test_failures_lock_out_with_429_and_retry_after(locked_app: object) -> None:
    attacker = TestClient(locked_app, base_url="https://vtn.test", client=("192.0.2.66", 40000))  # type: ignore[arg-type]
    home = TestClient(locked_app, base_url="https://vtn.test", client=("198.51.100.7", 40000))  # type: ignore[arg-type]
    with attacker, home:
        assert _token(home, "ven-a", SECRETS["ven-a"]).status_code == 200
        for _ in range(3):
            assert _token(attacker, "ven-a", "wrong-secret-0123456789").status_code == 401
        for who, secret in (("ven-a", SECRETS["ven-a"]), ("ven-b", SECRETS["ven-b"])):
            started = time.monotonic()
            refused = _token(attacker, who, secret)  # even the right secret: locked out
            assert time.monotonic() - started >= 0.3  # the tarpit: answered after the delay
            assert refused.status_code == 429, refused.text
            assert 55 <= int(refused.headers["retry-after"]) <= 60
            assert refused.headers["content-type"].startswith("application/problem+json")
            assert refused.json()["status"] == 429
            assert refused.headers["cache-control"] == "no-store"
        # the VEN at its usual address is not locked out by the attack on its id
        assert _token(home, "ven-a", SECRETS["ven-a"]).status_code == 200
        # nor is another client elsewhere
        assert _token(home, "ven-b", SECRETS["ven-b"]).status_code == 200


def test_rate_limit_per_client_is_429(tmp_path: Path) -> None:
    app = _app(
        tmp_path, TokenThrottleSettings(client_burst=2, client_per_s=0.01, refused_delay_s=0.0)
    )
    with TestClient(app, base_url="https://vtn.test") as client:  # type: ignore[arg-type]
        assert _token(client, "bl", SECRETS["bl"]).status_code == 200
        assert _token(client, "bl", SECRETS["bl"]).status_code == 200
        third = _token(client, "bl", SECRETS["bl"])
        assert third.status_code == 429
        assert 99 <= int(third.headers["retry-after"]) <= 100
        assert _token(client, "ven-a", SECRETS["ven-a"]).status_code == 200


def test_scrypt_runs_in_the_verifier_thread_and_a_full_verifier_is_503(tmp_path: Path) -> None:
    app = _app(tmp_path, TokenThrottleSettings(verify_queue_max=0, refused_delay_s=0.0))
    registry = app.state.registry  # type: ignore[attr-defined]
    threads: list[str] = []
    authenticate = registry.authenticate

    def recording(client_id: str, secret: str) -> object:
        threads.append(threading.current_thread().name)
        return authenticate(client_id, secret)

    registry.authenticate = recording
    with TestClient(app, base_url="https://vtn.test") as client:  # type: ignore[arg-type]
        assert _token(client, "bl", SECRETS["bl"]).status_code == 200
        assert _token(client, "bl", "wrong-secret-0123456789").status_code == 401
        assert threads and all(name.startswith("drready-verify") for name in threads)
        verifier = app.state.secret_verifier  # type: ignore[attr-defined]
        verifier._pending = verifier.threads  # as if a verification were running
        busy = _token(client, "ven-a", SECRETS["ven-a"])
        assert busy.status_code == 503
        assert busy.headers["retry-after"] == "1"
        verifier._pending = 0
        assert _token(client, "ven-a", SECRETS["ven-a"]).status_code == 200
