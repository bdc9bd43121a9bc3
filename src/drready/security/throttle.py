"""Throttling and lockout of the token endpoint (S1: JC-STAR ★1 "limit authentication attempts";
issue 12 item 5), as a core without I/O: the caller passes the time.

Every ``POST /auth/token`` with credentials costs one scrypt run (~75 ms of CPU, 16 MiB), so
unthrottled guessing both tests secrets and takes the CPU from every other client. Before the
scrypt run the endpoint asks :meth:`TokenThrottle.admit`; afterwards it reports the outcome
with :meth:`TokenThrottle.record`:

* **rate**: a token bucket per client address and one per client id (``burst`` attempts at
  once, refilled at ``per_s``); an empty bucket answers "retry after" the time to the next
  token. Successful and failed attempts alike count (both cost a scrypt run).
* **lockout**: ``failures_max`` failed attempts within ``failure_window_s`` lock the address,
  and the client id, for ``lockout_s``; each further lockout of the same key doubles the time,
  up to ``lockout_max_s``. A success clears the key's failures and strikes; so does
  ``lockout_max_s`` without a failure once the last lockout has ended (retrying right after
  a lockout keeps the long period).
* **keys**: the client id as sent (every id its own key, known or not, so the lockout does not
  tell known ids from unknown ones); the address as its /32 (IPv4, IPv4-mapped IPv6) or its /64
  (IPv6: one host usually holds a whole /64), see :func:`address_key`.
* **lockout as denial of service**: anyone who knows a client id could keep it locked. A lock
  of a client id therefore does not apply at the addresses from which that client
  authenticated successfully before (up to :data:`GOOD_ADDRESSES_MAX` per client, the most
  recent): a VEN at its usual address keeps getting tokens while its id is under attack from
  elsewhere; the attacker's own address is locked by its own failures.
* **tarpit**: the endpoint answers a refused attempt only after ``refused_delay_s`` (1 s), so
  a guesser's loop of instant 429s does not become a flood that delays the other clients.
* **one at a time per client id**: at most ``client_concurrency`` (1) admitted attempts of a
  client id are in flight (admitted, outcome not yet recorded); a further one is refused
  before any scrypt work. A guesser's parallel connections then cannot start ten scrypt runs
  before the first failure counts, and the lockout comes after exactly ``failures_max``
  checked guesses (a VEN fetches its tokens one at a time anyway). An attempt whose outcome
  is never recorded is forgotten after :data:`IN_FLIGHT_MAX_S`.
* **memory**: each table holds at most ``max_tracked`` keys (least recently used evicted).

The state lives in one process: with ``drready vtn serve --workers N`` each worker throttles
the connections dealt to it, so an attacker gets at most N times the budget.
"""

from __future__ import annotations

import ipaddress
import math
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Annotated, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "GOOD_ADDRESSES_MAX",
    "IN_FLIGHT_MAX_S",
    "TokenThrottle",
    "TokenThrottleSettings",
    "address_key",
]

V = TypeVar("V")

GOOD_ADDRESSES_MAX = 8
"""Addresses remembered per client id as those it authenticated from."""
IN_FLIGHT_MAX_S = 30.0
"""An admitted attempt not recorded within this [s] no longer counts as in flight."""


class TokenThrottleSettings(BaseModel):
    """Limits of the token endpoint (defaults: a VEN asks for a token every few minutes).

    Attributes
    ----------
    address_burst, address_per_s : int, float
        Token bucket per client address [attempts], [attempts/s]: 100 at once (a site with
        many VENs behind one address starting together), then 10/s.
    client_burst, client_per_s : int, float
        Token bucket per client id: 10 at once, then one every 2 s.
    failures_max, failure_window_s : int, float
        Failed attempts [count] within this window [s] that lock the key: 5 in 60 s.
    client_concurrency : int
        Admitted attempts of one client id in flight at once (1).
    lockout_s, lockout_max_s : float
        First lockout [s] (60), doubled per further lockout up to this [s] (3 600).
    max_tracked : int
        Keys kept per table (addresses, client ids).
    verify_threads : int
        Threads that run scrypt (per process); the event loop never does.
    verify_queue_max : int
        Verifications that may wait for a thread; beyond, 503 with ``Retry-After``.
    verify_nice : int
        Nice value of those threads (Linux: per thread; 0–19; 19, the lowest priority, by
        default): the event loop's threads get the CPU first, so a burst of guesses slows
        token requests, not the other clients.
    refused_delay_s : float
        A refused attempt (429, 503) is answered after ``min(Retry-After, this)`` [s]: a
        tarpit. A guesser looping on a connection then gets one answer a second instead of
        hundreds, each of which costs the event loop as much as another client's request;
        the waiting costs no CPU.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    address_burst: Annotated[int, Field(ge=1, le=100_000)] = 100
    address_per_s: Annotated[float, Field(gt=0, le=100_000)] = 10.0
    client_burst: Annotated[int, Field(ge=1, le=100_000)] = 10
    client_per_s: Annotated[float, Field(gt=0, le=100_000)] = 0.5
    failures_max: Annotated[int, Field(ge=1, le=100_000)] = 5
    failure_window_s: Annotated[float, Field(gt=0, le=86_400)] = 60.0
    lockout_s: Annotated[float, Field(gt=0, le=86_400)] = 60.0
    lockout_max_s: Annotated[float, Field(gt=0, le=86_400 * 7)] = 3600.0
    client_concurrency: Annotated[int, Field(ge=1, le=1_000)] = 1
    max_tracked: Annotated[int, Field(ge=16, le=10_000_000)] = 16_384
    verify_threads: Annotated[int, Field(ge=1, le=64)] = 1
    verify_queue_max: Annotated[int, Field(ge=0, le=10_000)] = 16
    verify_nice: Annotated[int, Field(ge=0, le=19)] = 19
    refused_delay_s: Annotated[float, Field(ge=0, le=60)] = 1.0


def address_key(host: str) -> str:
    """The throttling key of a client address: ``203.0.113.7``, ``2001:db8:1:2::/64``;
    anything that is not an IP address (a test client's name) as it is, at most 64 chars."""
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


@dataclass
class _Bucket:
    tokens: float
    stamp: float


@dataclass
class _Strikes:
    failures: deque[float] = field(default_factory=deque)
    strikes: int = 0
    locked_until: float = -math.inf
    last_failure: float = -math.inf


class _Table(Generic[V]):
    """A bounded LRU map (least recently used key evicted)."""

    def __init__(self, max_items: int) -> None:
        self.max_items = max_items
        self.items: OrderedDict[str, V] = OrderedDict()

    def get(self, key: str) -> V | None:
        value = self.items.get(key)
        if value is not None:
            self.items.move_to_end(key)
        return value

    def put(self, key: str, value: V) -> V:
        self.items[key] = value
        self.items.move_to_end(key)
        while len(self.items) > self.max_items:
            self.items.popitem(last=False)
        return value


class TokenThrottle:
    """Rate limits and lockouts of token requests (see the module docstring).

    Parameters
    ----------
    settings : TokenThrottleSettings
    """

    def __init__(self, settings: TokenThrottleSettings | None = None) -> None:
        self.settings = settings or TokenThrottleSettings()
        size = self.settings.max_tracked
        self._address_buckets: _Table[_Bucket] = _Table(size)
        self._client_buckets: _Table[_Bucket] = _Table(size)
        self._address_strikes: _Table[_Strikes] = _Table(size)
        self._client_strikes: _Table[_Strikes] = _Table(size)
        self._good: _Table[OrderedDict[str, None]] = _Table(size)
        self._in_flight: _Table[list[float]] = _Table(size)

    def admit(self, client_id: str, address: str, now: float) -> float:
        """``0.0`` if an attempt of ``client_id`` from ``address`` (an :func:`address_key`) may
        be checked now (it then takes a token from both buckets), else the seconds to wait."""
        s = self.settings
        waits = [self._locked_for(self._address_strikes.get(address), now)]
        good = self._good.get(client_id)
        if good is None or address not in good:
            waits.append(self._locked_for(self._client_strikes.get(client_id), now))
        address_bucket = self._refilled(
            self._address_buckets, address, s.address_burst, s.address_per_s, now
        )
        client_bucket = self._refilled(
            self._client_buckets, client_id, s.client_burst, s.client_per_s, now
        )
        waits.append(max(0.0, (1.0 - address_bucket.tokens) / s.address_per_s))
        waits.append(max(0.0, (1.0 - client_bucket.tokens) / s.client_per_s))
        flying = [t for t in self._in_flight.get(client_id) or () if now - t < IN_FLIGHT_MAX_S]
        if len(flying) >= s.client_concurrency:
            waits.append(1.0)  # one at a time: try again in a second
        wait = max(waits)
        if wait > 0.0:
            return wait
        address_bucket.tokens -= 1.0
        client_bucket.tokens -= 1.0
        self._in_flight.put(client_id, [*flying, now])
        return 0.0

    def release(self, client_id: str) -> None:
        """An admitted attempt of ``client_id`` ended without an outcome (the verifier was full,
        the request failed): it no longer counts as in flight. Call it, or :meth:`record`,
        once per admitted attempt."""
        flying = self._in_flight.get(client_id)
        if flying:
            flying.pop(0)

    def record(self, client_id: str, address: str, *, success: bool, now: float) -> None:
        """The outcome of an admitted attempt: failures count toward the lockouts."""
        self.release(client_id)
        if success:
            self._address_strikes.items.pop(address, None)
            self._client_strikes.items.pop(client_id, None)
            good = self._good.get(client_id) or self._good.put(client_id, OrderedDict())
            good[address] = None
            good.move_to_end(address)
            while len(good) > GOOD_ADDRESSES_MAX:
                good.popitem(last=False)
            return
        self._failed(self._address_strikes, address, now)
        self._failed(self._client_strikes, client_id, now)

    def locked(self, client_id: str, address: str, now: float) -> bool:
        """Whether the address, or the client id at this address, is locked out now."""
        good = self._good.get(client_id)
        client_locked = (good is None or address not in good) and self._locked_for(
            self._client_strikes.get(client_id), now
        ) > 0.0
        return client_locked or self._locked_for(self._address_strikes.get(address), now) > 0.0

    @staticmethod
    def _locked_for(strikes: _Strikes | None, now: float) -> float:
        if strikes is None:
            return 0.0
        return max(0.0, strikes.locked_until - now)

    @staticmethod
    def _refilled(
        table: _Table[_Bucket], key: str, burst: int, per_s: float, now: float
    ) -> _Bucket:
        bucket = table.get(key)
        if bucket is None:
            return table.put(key, _Bucket(float(burst), now))
        # min: a bucket holds at most its burst, however long it was idle
        bucket.tokens = min(float(burst), bucket.tokens + (now - bucket.stamp) * per_s)
        bucket.stamp = now
        return bucket

    def _failed(self, table: _Table[_Strikes], key: str, now: float) -> None:
        s = self.settings
        strikes = table.get(key) or table.put(key, _Strikes())
        if now - max(strikes.last_failure, strikes.locked_until) >= s.lockout_max_s:
            strikes.strikes = 0  # quiet long enough: the next lockout starts short again
        strikes.last_failure = now
        failures = strikes.failures
        failures.append(now)
        while failures and failures[0] <= now - s.failure_window_s:
            failures.popleft()
        if len(failures) >= s.failures_max:
            failures.clear()
            period = min(s.lockout_max_s, s.lockout_s * 2.0**strikes.strikes)
            strikes.strikes += 1
            strikes.locked_until = now + period
