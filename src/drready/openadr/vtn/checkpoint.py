"""Background WAL checkpoints for the VTN's SQLite database (C1 under load, issue 4: p99 of
``POST /reports``).

In WAL mode SQLite appends each commit to the ``-wal`` file and copies the pages back into the
database file at a *checkpoint*. By default the connection whose commit takes the WAL past
``wal_autocheckpoint`` pages (1 000) runs the checkpoint inside that commit: measured on the
benchmark machine, one commit in a hundred then took 5–9 ms instead of 0.2 ms, holding the
write lock and the worker's event loop meanwhile — the p99 of report posting.

:class:`WalCheckpointer` runs ``PRAGMA wal_checkpoint(PASSIVE)`` on its own connection in a
daemon thread every ``interval_s`` (SQLite releases the GIL while it works), so the WAL stays
short and request commits no longer reach the threshold; the engine's connections keep
``wal_autocheckpoint`` only as a backstop, at :data:`AUTOCHECKPOINT_BACKSTOP_PAGES` (set by
:func:`drready.openadr.vtn.app.make_engine`). A PASSIVE checkpoint never waits for readers or
writers (https://www.sqlite.org/pragma.html#pragma_wal_checkpoint,
https://www.sqlite.org/wal.html#ckpt), so it cannot block requests; with several worker
processes each runs one, and a checkpoint finding another in progress just skips its turn.
"""

from __future__ import annotations

import logging
import sqlite3
import threading

__all__ = ["AUTOCHECKPOINT_BACKSTOP_PAGES", "WalCheckpointer"]

AUTOCHECKPOINT_BACKSTOP_PAGES = 16_000
"""``wal_autocheckpoint`` of the VTN's connections [pages of 4 KiB: 64 MiB of WAL]: reached
only if the background checkpoints stop or fall behind."""

_log = logging.getLogger("drready.openadr.vtn")


class WalCheckpointer:
    """A daemon thread checkpointing the WAL of the SQLite file ``database`` periodically.

    Parameters
    ----------
    database : str
        Path of the database file (in WAL mode).
    interval_s : float
        Pause between checkpoints [s], > 0.
    """

    def __init__(self, database: str, interval_s: float = 0.2) -> None:
        if not interval_s > 0:
            raise ValueError(f"interval_s: must be > 0, got {interval_s}")
        self.database = database
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread (once)."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="drready-vtn-wal-checkpoint", daemon=True
            )
            self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the thread and wait for it [at most ``timeout_s``]."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def _run(self) -> None:
        connection = sqlite3.connect(self.database, timeout=0, check_same_thread=False)
        try:
            while not self._stop.wait(self.interval_s):
                try:
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as err:  # busy or transient: the next turn retries
                    _log.debug("WAL checkpoint skipped: %s", err)
        finally:
            connection.close()
