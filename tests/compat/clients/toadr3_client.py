"""Compatibility row runner for ``toadr3`` (a VEN-side OpenADR 3.0 client on aiohttp): token,
programs, events (3.0 target filters), reports, subscriptions. It has no VEN, resource or
event writing and no MQTT: those cells are ``n/a``. Run by ``tests/compat/harness.py`` in the
client's virtual environment; prints one JSON line of cells. Not imported by drready."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import pydantic
import toadr3
from _rows import (
    NOTIFY_TIMEOUT_S,
    EchoReceiver,
    Matrix,
    Outcome,
    bl_create_event,
    bl_get,
    fail,
    load_config,
    notification_names,
)
from toadr3.models import ObjectOperation, Report, Subscription

config = load_config()
m = Matrix()
if config["rows"] == ["mqtt_acl"]:
    m.set("mqtt_acl", "n/a", "no MQTT")
    m.emit()
    raise SystemExit(0)


def describe(exc: BaseException) -> str:
    if isinstance(exc, toadr3.ToadrError):
        print(
            f"ToadrError: {exc} {exc.json_response if hasattr(exc, 'json_response') else ''}",
            file=sys.stderr,
        )
        return f"HTTP {exc.status_code}"
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def main() -> None:
    oauth = toadr3.OAuthScopeConfig(
        token_url=config["vtn"] + "/auth/token",
        grant_type="client_credentials",
        scope="read_targets read_ven_objects write_reports write_subscriptions",
        client_id=config["ven_id"],
        client_secret=config["ven_secret"],
    )
    client = toadr3.ToadrClient(config["vtn"], oauth)
    loop = asyncio.get_running_loop()

    async def run(key: str, coro_fn: Any) -> None:
        # Matrix.run is synchronous; run the coroutine to completion inside it
        result: dict[str, BaseException] = {}

        async def wrapped() -> None:
            try:
                await coro_fn()
            except BaseException as exc:
                result["exc"] = exc

        await wrapped()

        def check() -> None:
            if "exc" in result:
                raise result["exc"]

        m.run(key, check, describe)

    async def token() -> None:
        if await client.token is None:
            raise fail("no token")

    await run("token", token)
    if m.rows["token"][0] != "PASS":
        m.emit()
        await client.close()
        return

    async def program_read() -> None:
        program = await client.get_program(config["program_id"])
        if program is None or program.id != config["program_id"]:
            raise fail("program not read back")

    async def event_read() -> None:
        ids = [e.id for e in await client.get_events(program_id=config["program_id"])]
        if config["event_id"] not in ids:
            raise fail("the program's event is not listed")

    async def events_targets() -> None:
        # 3.0 filters by targetType/targetValues and models targets as valuesMaps; 3.1 has
        # `targets` (strings) for both
        try:
            events = await client.get_events(
                program_id=config["program_id"],
                target_type="VEN_NAME",
                target_values=[config["target"]],
            )
        except Exception as exc:
            raise Outcome(
                "3.0",
                f"filters by targetType/targetValues and reads targets as valuesMaps; 3.1 has "
                f"targets as strings: {describe(exc)}",
            ) from exc
        if config["targeted_event_id"] not in [e.id for e in events]:
            raise Outcome(
                "3.0",
                "filters by targetType/targetValues (3.0); 3.1's filter is `targets`, so the "
                "VTN answers only untargeted events",
            )

    async def report_create() -> None:
        report = Report.model_validate(
            {
                "programID": config["program_id"],
                "eventID": config["event_id"],
                "clientName": f"{config['ven_id']}-gw",
                "resources": [
                    {
                        "resourceName": f"{config['ven_id']}-heater",
                        "intervals": [{"id": 0, "payloads": [{"type": "USAGE", "values": [0.8]}]}],
                    }
                ],
            }
        )
        try:
            created = await client.post_report(report)
        except pydantic.ValidationError as exc:
            stored = await loop.run_in_executor(
                None, bl_get, config, f"/reports?eventID={config['event_id']}"
            )
            mine = [r for r in stored if r.get("clientName") == f"{config['ven_id']}-gw"]
            if "programID" in str(exc) and mine:
                raise Outcome(
                    "3.0",
                    "the VTN stores the report, but the client's 3.0 model requires programID "
                    "in the answer (3.1 reports have none)",
                ) from exc
            raise
        if not created.id:
            raise fail("no report id")

    receiver = EchoReceiver(config)
    subscribed: dict[str, Any] = {}

    async def subscription_create() -> None:
        op = ObjectOperation.model_validate(
            {"objects": ["EVENT"], "operations": ["POST"], "callbackUrl": receiver.url}
        )
        sub = Subscription.model_validate(
            {
                "clientName": f"{config['ven_id']}-gw",
                "programID": config["program_id"],
                "objectOperations": [op.model_dump(by_alias=True)],
            }
        )
        try:
            created = await client.post_subscription(sub)
        except toadr3.ToadrError as exc:
            raise Outcome(
                "3.0",
                "3.0's subscription operations GET/POST/PUT/DELETE (3.1: CREATE/READ/UPDATE/"
                f"DELETE); the VTN refuses POST: {describe(exc)}",
            ) from exc
        subscribed["id"] = created.id

    async def webhook_delivery() -> None:
        if "id" not in subscribed:
            status, note = m.rows["subscription_create"]
            raise Outcome(status, note if status == "3.0" else "needs the subscription row")
        name = f"compat-webhook-{config['ven_id']}"
        await loop.run_in_executor(None, bl_create_event, config, name)
        got = await loop.run_in_executor(
            None, receiver.wait_for, lambda p: notification_names(p) == name, NOTIFY_TIMEOUT_S
        )
        if not got:
            raise fail(f"no notification within {NOTIFY_TIMEOUT_S:.0f} s")

    await run("program_read", program_read)
    await run("event_read", event_read)
    m.set("ven_create", "n/a", "VEN-side reads and reports only")
    m.set("resource_create", "n/a", "VEN-side reads and reports only")
    await run("events_targets", events_targets)
    await run("report_create", report_create)
    await run("subscription_create", subscription_create)
    await run("webhook_delivery", webhook_delivery)
    m.set("mqtt", "n/a", "no MQTT")
    m.emit()
    receiver.close()
    await client.close()


asyncio.run(main())
