"""One admitted attempt per client id at a time (S1; issue 12 item 5 follow-up): parallel
guesses cannot start several scrypt runs before the first failure counts, so the lockout comes
after exactly ``failures_max`` checked guesses; a lost outcome is released or forgotten."""

from __future__ import annotations

from drready.security.throttle import IN_FLIGHT_MAX_S, TokenThrottle, TokenThrottleSettings

WIDE = TokenThrottleSettings(address_burst=1000, client_burst=1000, failures_max=5)


def test_a_second_attempt_of_the_same_client_waits_for_the_first() -> None:
    t = TokenThrottle(WIDE)
    assert t.admit("ven-a", "192.0.2.1", 0.0) == 0.0
    assert t.admit("ven-a", "192.0.2.2", 0.0) == 1.0  # in flight, from any address
    assert t.admit("ven-b", "192.0.2.1", 0.0) == 0.0  # another client id is not held up
    t.record("ven-a", "192.0.2.1", success=False, now=0.1)
    assert t.admit("ven-a", "192.0.2.2", 0.1) == 0.0
    t.release("ven-a")  # e.g. the verifier was full: no outcome
    assert t.admit("ven-a", "192.0.2.2", 0.2) == 0.0
    # an outcome never recorded is forgotten after IN_FLIGHT_MAX_S
    assert t.admit("ven-a", "192.0.2.2", 0.3) == 1.0
    assert t.admit("ven-a", "192.0.2.2", 0.2 + IN_FLIGHT_MAX_S) == 0.0


def test_parallel_guessers_get_exactly_failures_max_checked_guesses() -> None:
    t = TokenThrottle(WIDE)
    checked = 0
    now = 0.0
    for _ in range(200):  # eight connections, each retrying as soon as it is answered
        admitted = [c for c in range(8) if t.admit("target", "203.0.113.9", now) == 0.0]
        for _ in admitted:
            checked += 1
            t.record("target", "203.0.113.9", success=False, now=now)
        now += 0.01
    assert checked == WIDE.failures_max
    assert t.locked("target", "203.0.113.9", now)
