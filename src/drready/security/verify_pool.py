"""A small, bounded, low-priority thread pool for CPU-heavy secret checks (S1: a brute-force run
on the token endpoint must not starve the other clients; issue 12 item 5).

Each scrypt verification takes ~75 ms of CPU. Run in the server's shared thread pool (anyio's:
40 threads), a burst of guesses fills it, occupies every core, and the requests that need a
thread or a core queue behind the guesses (measured before: other clients' GET latency ×9).
:class:`BoundedVerifier` runs them instead in ``threads`` threads of their own, lowered to
``nice`` (Linux schedules threads one by one, so only these threads lose priority; hashlib's
scrypt releases the GIL, so the event loop runs meanwhile), with at most ``queue_max`` calls
waiting: beyond that :meth:`BoundedVerifier.run` raises :class:`VerifierBusyError` at once
(the endpoint answers 503 with ``Retry-After``), so memory (16 MiB per scrypt run) and waiting
time stay bounded as well.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

__all__ = ["BoundedVerifier", "VerifierBusyError"]

T = TypeVar("T")


class VerifierBusyError(Exception):
    """Every thread is busy and ``queue_max`` calls are waiting already."""


def _lower_priority(nice: int) -> None:
    # Linux: PRIO_PROCESS with a thread id sets that thread's nice value only; raising one's
    # own nice value needs no privilege. Elsewhere it may set the process's: then skip it.
    if nice <= 0 or not hasattr(os, "setpriority") or os.uname().sysname != "Linux":
        return
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)


class BoundedVerifier:
    """Runs blocking calls in ``threads`` low-priority threads, at most ``queue_max`` waiting.

    Parameters
    ----------
    threads : int
        Worker threads (started on first use).
    queue_max : int
        Calls that may wait for a thread beyond those running.
    nice : int
        Nice value of the threads (0: unchanged; Linux only).
    """

    def __init__(self, threads: int = 1, queue_max: int = 16, nice: int = 19) -> None:
        if threads < 1 or queue_max < 0:
            raise ValueError("threads must be ≥ 1 and queue_max ≥ 0")
        self.threads = threads
        self.queue_max = queue_max
        self.nice = nice
        self._executor: ThreadPoolExecutor | None = None
        self._pending = 0  # submitted and not finished in their thread (not the awaiting side)
        self._lock = threading.Lock()

    @property
    def pending(self) -> int:
        """Calls submitted whose thread work has not finished."""
        return self._pending

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(
                max_workers=self.threads,
                thread_name_prefix="drready-verify",
                initializer=_lower_priority,
                initargs=(self.nice,),
            )
        return self._executor

    async def run(self, fn: Callable[..., T], /, *args: object) -> T:
        """``fn(*args)`` in a verifier thread; :class:`VerifierBusyError` when full.

        The count is released when the thread finishes, not when the awaiting request goes
        away, so a client that disconnects cannot make room for more work than ``threads +
        queue_max``.
        """
        with self._lock:
            if self._pending >= self.threads + self.queue_max:
                raise VerifierBusyError("secret verification queue full")
            self._pending += 1

        def release(_: object) -> None:
            with self._lock:
                self._pending -= 1

        try:
            future = self._pool().submit(fn, *args)
        except BaseException:
            release(None)
            raise
        future.add_done_callback(release)  # when the thread is done (or the call cancelled)
        return await asyncio.wrap_future(future)

    def close(self) -> None:
        """Stop the threads once their current call is done (queued calls are cancelled)."""
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
