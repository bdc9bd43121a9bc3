"""Child process of tests/test_vtn_workers.py: serves a small ASGI app in several worker
processes with :func:`drready.openadr.vtn.workers.serve`.

Usage: ``python tests/workers_child.py APP WORKERS`` where APP is ``pid_app`` (answers its
worker's process id; ``/slow`` waits a second first) or anything else (an app that does not
exist: every worker fails to start). Listens on a free port of 127.0.0.1; uvicorn's log on
standard error says which.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

import uvicorn

from drready.openadr.vtn.workers import serve


async def pid_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["path"] == "/slow":
        await asyncio.sleep(1.0)
    body = str(os.getpid()).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(body))],
        }
    )
    await send({"type": "http.response.body", "body": body})


def main() -> int:
    app_name, workers = sys.argv[1], int(sys.argv[2])
    config = uvicorn.Config(
        f"workers_child:{app_name}",
        host="127.0.0.1",
        port=0,
        log_level="info",
        timeout_graceful_shutdown=5,
    )
    return serve(config, workers)


if __name__ == "__main__":
    raise SystemExit(main())
