"""Several uvicorn worker processes behind one listening socket, with the connections dealt to
them in turn (C1 under load, issue 4: p99 < 50 ms at 100 concurrent VENs).

Why not uvicorn's own ``--workers``: it hands the one listening socket to every worker and lets
them race to accept. uvloop (libuv) accepts every pending connection each time it wakes, so a
burst of keep-alive connections lands unevenly: of wrk's 100 connections over 3 VTN workers we
counted 50/30/20, 63/37/0 and 39/31/30 (``ss -tnp``), and 45/29/26 with libuv's
``UV_TCP_SINGLE_ACCEPT=1``. The kernel gives each busy worker the same share of CPU, so a
worker holding twice the connections answers each twice as slowly, and the service's p99 is
that worker's (``POST /reports`` at 100 clients: p99 51–60 ms while the mean was ~22 ms).
gunicorn shares the socket the same way; ``SO_REUSEPORT`` picks a worker by a hash of the
connection's addresses (a binomial spread, ±5 of 33 at this size). Node.js's cluster module
deals connections from its primary process in turn by default on Linux for this very reason;
no Python server does, so this module does it by hand, around uvicorn's own ``Server``.

How (:func:`serve`):

* The supervisor (the calling process) binds the socket (``config.bind_socket()``, as uvicorn
  does), starts ``workers`` processes (``spawn``) and gives each one end of a Unix socket pair,
  its *channel*. A thread accepts connections, sets ``TCP_NODELAY`` and sends each socket to
  the next ready worker in turn over its channel (``SCM_RIGHTS``), then closes its own copy.
* Each worker runs uvicorn's :class:`~uvicorn.Server` — the same protocol classes (httptools),
  lifespan, limits, keep-alive timeout and graceful shutdown — with one change
  (:class:`_DealtServer`): instead of listening it takes connections from its channel and
  starts each with :meth:`asyncio.loop.connect_accepted_socket`, the TLS handshake included.
  It says ``R`` on its channel once started; connections go only to ready workers.
* A worker that dies is replaced (its open connections are lost; clients reconnect, and the new
  worker gets the next connections in turn). A worker that ends before it was ever ready (the
  app does not import, a TLS file is missing, the lifespan startup failed) stops the whole
  service with uvicorn's startup-failure code 3: it would fail the same way on every restart.
  ``SIGINT``/``SIGTERM`` stop accepting, ask every worker to shut down gracefully (``SIGTERM``),
  wait up to ``config.timeout_graceful_shutdown`` (default 30 s) and kill what is left. A worker
  whose supervisor is gone (its channel reads end-of-file) shuts down gracefully by itself.

Dealing in turn balances connections by count, not by load; VENs keep one connection each and
poll at similar rates, which is the load this server sees. Linux and macOS (``SCM_RIGHTS``);
not Windows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import select
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any

import uvicorn

__all__ = ["READY", "serve"]

logger = logging.getLogger("uvicorn.error")

STARTUP_FAILURE = 3  # uvicorn's exit code of a server that could not start (sys.exit(3))
READY = b"R"  # a worker's message on its channel once its server has started
_CONNECTION = b"C"  # the supervisor's message carrying one accepted socket
_TICK_S = 0.2  # how often the supervisor looks at its workers and its stop flag
_SEND_TIMEOUT_S = 1.0  # a worker whose channel stays full this long is skipped
_READY_WAIT_S = 30.0  # how long an accepted connection waits for a ready worker
_GRACE_S = 30.0  # shutdown grace when the config sets none (uvicorn waits forever then)


def _channel_pair() -> tuple[socket.socket, socket.socket]:
    """A Unix socket pair that keeps message boundaries where the platform can."""
    kind = getattr(socket, "SOCK_SEQPACKET", socket.SOCK_STREAM)
    try:
        return socket.socketpair(socket.AF_UNIX, kind)
    except OSError:  # macOS has no SOCK_SEQPACKET for AF_UNIX
        return socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)


# --- worker side ------------------------------------------------------------------------------


class _ChannelListener:
    """Takes the sockets the supervisor deals on ``channel`` and starts a connection on each;
    it stands where uvicorn keeps its listening servers (``close``/``wait_closed``)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        channel: socket.socket,
        protocol_factory: Callable[[], asyncio.Protocol],
        ssl: Any,
        on_supervisor_gone: Callable[[], None],
    ) -> None:
        self._loop = loop
        self._channel = channel
        self._protocol_factory = protocol_factory
        self._ssl = ssl
        self._on_supervisor_gone = on_supervisor_gone
        self._starting: set[asyncio.Task[Any]] = set()
        self._closed = False
        channel.setblocking(False)
        loop.add_reader(channel.fileno(), self._on_readable)

    def _on_readable(self) -> None:
        while not self._closed:
            try:
                message, fds, _flags, _addr = socket.recv_fds(self._channel, 1, 4)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                message, fds = b"", []
            if not message and not fds:  # end of file: the supervisor is gone
                self.close()
                self._on_supervisor_gone()
                return
            for fd in fds:
                self._start(socket.socket(fileno=fd))

    def _start(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        task = self._loop.create_task(
            self._loop.connect_accepted_socket(self._protocol_factory, sock, ssl=self._ssl)
        )
        self._starting.add(task)
        task.add_done_callback(lambda done: self._started(done, sock))

    def _started(self, task: asyncio.Task[Any], sock: socket.socket) -> None:
        self._starting.discard(task)
        if task.cancelled() or task.exception() is not None:
            # a failed TLS handshake or a client gone before it: nothing to serve
            logger.debug(
                "connection not started: %r", None if task.cancelled() else task.exception()
            )
            with contextlib.suppress(OSError):
                sock.close()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(ValueError, OSError):
            self._loop.remove_reader(self._channel.fileno())
        self._channel.close()

    async def wait_closed(self) -> None:
        if self._starting:
            await asyncio.gather(*self._starting, return_exceptions=True)


class _DealtServer(uvicorn.Server):
    """uvicorn's server taking its connections from a channel instead of a listening socket."""

    def __init__(self, config: uvicorn.Config, channel: socket.socket) -> None:
        super().__init__(config)
        self._channel = channel

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await self.lifespan.startup()
        if self.lifespan.should_exit:
            sys.exit(STARTUP_FAILURE)
        config = self.config

        def protocol_factory() -> asyncio.Protocol:  # as uvicorn's Server.startup makes them
            protocol: asyncio.Protocol = config.http_protocol_class(  # type: ignore[call-arg]
                config=config, server_state=self.server_state, app_state=self.lifespan.state
            )
            return protocol

        listener = _ChannelListener(
            asyncio.get_running_loop(),
            self._channel,
            protocol_factory,
            config.ssl,
            self._supervisor_gone,
        )
        self.servers = [listener]  # type: ignore[list-item]
        self.started = True
        with contextlib.suppress(OSError):
            self._channel.send(READY)

    def _supervisor_gone(self) -> None:
        logger.warning("worker %d: its supervisor is gone; shutting down", os.getpid())
        self.should_exit = True


def _worker_main(config: uvicorn.Config, channel: socket.socket) -> None:
    """A worker process: uvicorn's logging set up again, then the server until it stops."""
    config.configure_logging()
    with contextlib.suppress(KeyboardInterrupt):
        _DealtServer(config, channel).run()


# --- supervisor side --------------------------------------------------------------------------


@dataclass
class _Worker:
    process: BaseProcess
    channel: socket.socket
    ready: bool = False
    gone: bool = False  # its channel ended or failed: deal nothing more to it


class _Supervisor:
    def __init__(self, config: uvicorn.Config, workers: int) -> None:
        self.config = config
        self.count = workers
        self.context = multiprocessing.get_context("spawn")
        self.workers: list[_Worker] = []
        self.lock = threading.Condition()
        self.next_index = 0
        self.stop = threading.Event()
        self.exit_code = 0

    # workers

    def start_worker(self) -> _Worker:
        parent, child = _channel_pair()
        process = self.context.Process(
            target=_worker_main, args=(self.config, child), name="drready-vtn-worker"
        )
        process.start()
        child.close()
        parent.settimeout(_SEND_TIMEOUT_S)
        worker = _Worker(process, parent)
        logger.info("Started worker process [%s]", process.pid)
        return worker

    def retire(self, worker: _Worker) -> None:
        worker.gone = True
        with contextlib.suppress(OSError):
            worker.channel.close()

    def poll_channels(self) -> None:
        """Read each worker's ``R`` (ready) or end-of-file (gone)."""
        live = {w.channel.fileno(): w for w in self.workers if not w.gone}
        if not live:
            return
        readable, _, _ = select.select(list(live), [], [], 0)
        for fd in readable:
            worker = live[fd]
            try:
                data = worker.channel.recv(16)
            except OSError:
                data = b""
            with self.lock:
                if data and READY in data and not worker.ready:
                    worker.ready = True
                    logger.info("Worker process [%s] ready", worker.process.pid)
                elif not data:
                    self.retire(worker)
                self.lock.notify_all()

    def check_workers(self) -> None:
        """Replace dead workers; stop everything on a worker that could not start."""
        for index, worker in enumerate(list(self.workers)):
            if worker.process.is_alive():
                continue
            worker.process.join()
            with self.lock:
                self.retire(worker)
            if not worker.ready:
                logger.error(
                    "Worker process [%s] ended (exit code %s) before it was ready; stopping",
                    worker.process.pid,
                    worker.process.exitcode,
                )
                self.exit_code = STARTUP_FAILURE
                self.stop.set()
                return
            logger.warning(
                "Worker process [%s] died (exit code %s); starting another",
                worker.process.pid,
                worker.process.exitcode,
            )
            replacement = self.start_worker()
            with self.lock:
                self.workers[index] = replacement

    # dealing

    def deal(self, connection: socket.socket) -> None:
        """Send ``connection`` to the next ready worker (waiting a moment for one), then close
        this process's copy."""
        try:
            deadline = time.monotonic() + _READY_WAIT_S
            while not self.stop.is_set():
                with self.lock:
                    ready = [w for w in self.workers if w.ready and not w.gone]
                    if not ready:
                        if time.monotonic() > deadline:
                            return
                        self.lock.wait(_TICK_S)
                        continue
                    worker = ready[self.next_index % len(ready)]
                    self.next_index += 1
                try:
                    socket.send_fds(worker.channel, [_CONNECTION], [connection.fileno()])
                except OSError as err:
                    logger.warning("Worker process [%s]: %s; skipped", worker.process.pid, err)
                    with self.lock:
                        self.retire(worker)
                    continue
                return
        finally:
            connection.close()

    def accept_loop(self, listener: socket.socket) -> None:
        while not self.stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError as err:
                if self.stop.is_set():
                    return
                logger.error("accept: %s", err)  # e.g. out of file descriptors: back off
                time.sleep(_TICK_S)
                continue
            connection.settimeout(None)
            if connection.family in (socket.AF_INET, socket.AF_INET6):
                connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.deal(connection)

    # life cycle

    def run(self, listener: socket.socket) -> int:
        logger.info("Started supervisor process [%d]", os.getpid())
        with self.lock:
            self.workers = [self.start_worker() for _ in range(self.count)]
        listener.settimeout(_TICK_S)
        acceptor = threading.Thread(
            target=self.accept_loop, args=(listener,), name="drready-vtn-accept", daemon=True
        )
        acceptor.start()
        try:
            while not self.stop.wait(_TICK_S):
                self.poll_channels()
                self.check_workers()
        finally:
            self.stop.set()
            acceptor.join(timeout=5 * _TICK_S)
            listener.close()
            self.shut_down()
        logger.info("Stopping supervisor process [%d]", os.getpid())
        return self.exit_code

    def shut_down(self) -> None:
        """SIGTERM to every worker (graceful), wait, then SIGKILL what is left."""
        for worker in self.workers:
            if worker.process.is_alive() and worker.process.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(worker.process.pid, signal.SIGTERM)
        grace_s = self.config.timeout_graceful_shutdown
        deadline = time.monotonic() + (_GRACE_S if grace_s is None else grace_s) + 5
        for worker in self.workers:
            worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.process.is_alive():
                logger.error("Worker process [%s] did not stop; killing it", worker.process.pid)
                worker.process.kill()
                worker.process.join()
            self.retire(worker)


def serve(config: uvicorn.Config, workers: int) -> int:
    """Serve ``config`` (an import string app, as uvicorn needs for workers) in ``workers``
    processes with connections dealt in turn (see the module docstring) until ``SIGINT`` or
    ``SIGTERM``. Returns the exit code: 0, or uvicorn's startup-failure code (3) when a worker
    could not start.

    Raises
    ------
    ValueError
        ``workers`` below 1, or the app is not an import string.
    """
    if workers < 1:
        raise ValueError(f"workers: must be at least 1, got {workers}")
    if not isinstance(config.app, str):
        raise ValueError("config.app: worker processes need an import string (module:attribute)")
    listener = config.bind_socket()
    listener.listen(config.backlog)
    supervisor = _Supervisor(config, workers)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        logger.info("Received %s, stopping", signal.Signals(signum).name)
        supervisor.stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return supervisor.run(listener)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
