"""The OpenADR 3.1 VEN client against the real VTN over real HTTPS (C1, S1).

The VTN is built with its app factory (SQLite file in ``tmp_path``, a client registry with a BL
client and the VEN client ``cloud-1``, a signing key generated here), served by uvicorn with
TLS certificates from :func:`drready.security.certs.write_bundle` in a background thread on
127.0.0.1 and a free port. The BL side is plain httpx. The helpers are shared with
``tests/test_cloud_end_to_end.py``.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import uvicorn

from drready.domain import DEFAULT_TZ
from drready.openadr import profile
from drready.openadr.models import (
    BlResourceCreate,
    OadrModel,
    ReportCreate,
    ReportResource,
    to_wire,
)
from drready.openadr.ven import (
    PAGE_LIMIT,
    VenClient,
    VenConfigError,
    VtnAuthError,
    VtnError,
    VtnUnavailableError,
)
from drready.openadr.vtn.app import create_app
from drready.openadr.vtn.settings import VtnSettings
from drready.security.certs import write_bundle
from drready.security.tls import PlainHttpWarning, client_ssl_context, uvicorn_ssl_kwargs
from drready.security.tokens import ClientRegistry

TOKYO = ZoneInfo(DEFAULT_TZ)
BL_ID = "dr-servicer"
VEN_ID = "cloud-1"


class FakeClock:
    """A settable clock [s] for token lifetimes."""

    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@dataclass
class Vtn:
    """A running VTN and what its clients need."""

    url: str
    ca_file: str
    bl_secret: str
    ven_secret: str
    clock: FakeClock

    def ven(self, client_id: str = VEN_ID, **kwargs: Any) -> VenClient:
        """A VEN client for ``client_id`` (``cloud-1``) trusting the test CA, named so."""
        args: dict[str, Any] = {"verify": self.ca_file, "ven_name": client_id}
        args.update(kwargs)
        return VenClient(self.url, client_id, self.ven_secret, **args)

    def bl(self) -> Bl:
        return Bl(self)


class Bl:
    """The servicer's business logic: plain httpx with a BL token."""

    def __init__(self, vtn: Vtn) -> None:
        self.http = httpx.Client(
            base_url=vtn.url, verify=client_ssl_context(vtn.ca_file), timeout=30
        )
        r = self.http.post(
            "/auth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": BL_ID,
                "client_secret": vtn.bl_secret,
            },
        )
        r.raise_for_status()
        self.http.headers["Authorization"] = f"Bearer {r.json()['access_token']}"

    def post(self, path: str, body: OadrModel) -> dict[str, Any]:
        r = self.http.post(path, json=to_wire(body))
        assert r.status_code == 201, r.text
        data: dict[str, Any] = r.json()
        return data

    def put(self, path: str, body: OadrModel) -> dict[str, Any]:
        r = self.http.put(path, json=to_wire(body))
        assert r.status_code == 200, r.text
        data: dict[str, Any] = r.json()
        return data

    def get(self, path: str, **params: Any) -> list[dict[str, Any]]:
        r = self.http.get(path, params=params)
        assert r.status_code == 200, r.text
        data: list[dict[str, Any]] = r.json()
        return data

    def close(self) -> None:
        self.http.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def serve_vtn(
    tmp_path: Path, *, ttl_s: int = 300, other_vens: tuple[str, ...] = ()
) -> Iterator[Vtn]:
    """Run the VTN over HTTPS in a thread for the duration of the block; ``other_vens`` are
    more VEN client ids besides ``cloud-1``, with the same secret (``Vtn.ven(client_id=…)``)."""
    bundle = write_bundle(tmp_path / "certs")
    bl_secret, ven_secret = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    registry = ClientRegistry(signing_key=secrets.token_bytes(32))
    registry.add_client(BL_ID, bl_secret, role="bl")
    for ven_id in (VEN_ID, *other_vens):
        registry.add_client(ven_id, ven_secret, role="ven")
    port = _free_port()
    url = f"https://127.0.0.1:{port}"
    clock = FakeClock(time.time())
    settings = VtnSettings(
        database_url=f"sqlite:///{tmp_path / 'vtn.db'}", base_url=url, token_ttl_s=ttl_s
    )
    tokens = registry.token_service(url, ttl_s=ttl_s, clock=clock)
    app = create_app(settings, registry, tokens)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        **uvicorn_ssl_kwargs(bundle.server_cert, bundle.server_key),
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "VTN did not start"
        time.sleep(0.02)
    try:
        yield Vtn(url, str(bundle.ca_cert), bl_secret, ven_secret, clock)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def vtn(tmp_path: Path) -> Iterator[Vtn]:
    with serve_vtn(tmp_path, ttl_s=30) as running:
        yield running


def _window() -> tuple[datetime, datetime]:
    start = datetime(2025, 5, 14, 10, 0, tzinfo=TOKYO)
    return start, start + timedelta(hours=4)


# --- token ----------------------------------------------------------------------------------


def test_token_fetched_kept_and_refreshed(vtn: Vtn) -> None:
    clock = FakeClock(1000.0)

    async def main() -> None:
        async with vtn.ven(clock=clock) as ven:
            await ven.programs()
            await ven.programs()
            assert ven.token_fetches == 1  # kept between calls
            clock.t += 0.8 * 30 + 0.1  # past REFRESH_AT of the 30 s lifetime
            await ven.programs()
            assert ven.token_fetches == 2  # refreshed before it ran out
            vtn.clock.t += 31  # the VTN now sees the token as expired: 401, one refresh
            await ven.programs()
            assert ven.token_fetches == 3

    asyncio.run(main())


def test_wrong_secret_is_a_clear_auth_error(vtn: Vtn) -> None:
    async def main() -> None:
        async with VenClient(
            vtn.url, VEN_ID, "not-the-secret-at-all", verify=vtn.ca_file, ven_name=VEN_ID
        ) as ven:
            with pytest.raises(VtnAuthError) as info:
                await ven.programs()
            assert info.value.status == 401
            assert "invalid client credentials" in str(info.value)

    asyncio.run(main())


# --- vens and resources -----------------------------------------------------------------------


def test_create_resource_posts_at_once_and_finds_a_name_it_holds(vtn: Vtn) -> None:
    """``create_resource`` (the maker cloud's registration, issue 11 item 3): one POST; a name
    this VEN already holds answers 409 and is found instead (a retried batch)."""

    async def main() -> None:
        async with vtn.ven() as ven:
            await ven.ensure_ven()
            a = await ven.create_resource("000005:C0000001")
            b = await ven.create_resource("000005:C0000001")
            assert a.id == b.id and a.resource_name == "000005:C0000001"
            assert [r.id for r in await ven.resources()] == [a.id]

    asyncio.run(main())


def test_ensure_ven_and_resources_are_idempotent(vtn: Vtn) -> None:
    async def main() -> None:
        async with vtn.ven() as ven:
            with pytest.raises(VenConfigError):
                await ven.ensure_resource("000005:C0000001")
            first = await ven.ensure_ven()
            again = await ven.ensure_ven()
            assert first.id == again.id and first.ven_name == VEN_ID
            a = await ven.ensure_resource("000005:C0000001")
            b = await ven.ensure_resource("000005:C0000001")
            assert a.id == b.id and a.ven_id == first.id
            many = await ven.ensure_resources([f"000005:C{k:07d}" for k in range(1, 61)])
            assert many[0].id == a.id
            assert len({r.id for r in many}) == 60
        async with vtn.ven() as other:  # a restarted cloud finds the same objects
            assert (await other.ensure_ven()).id == first.id
            assert len(await other.resources()) == 60  # two pages

    asyncio.run(main())
    bl = vtn.bl()
    try:
        assert len(bl.get("/vens", venName=VEN_ID)) == 1
        assert len(bl.get("/resources", limit=50)) == 50
        assert len(bl.get("/resources", skip=50, limit=50)) == 10
    finally:
        bl.close()


# --- events and pagination --------------------------------------------------------------------


def test_events_follow_pagination(vtn: Vtn) -> None:
    bl = vtn.bl()
    try:
        program_id = bl.post("/programs", profile.program())["id"]
        start, end = _window()
        n = 2 * PAGE_LIMIT + 7
        for k in range(n):
            bl.post("/events", profile.potential_request(program_id, start, end, name=f"p{k}"))
    finally:
        bl.close()

    async def main() -> None:
        async with vtn.ven() as ven:
            events = await ven.events(program_id)
            assert len(events) == n
            assert len({e.id for e in events}) == n
            assert {e.event_name for e in events} == {f"p{k}" for k in range(n)}
            assert all(profile.is_potential_request(e) for e in events)
            assert [p.program_name for p in await ven.programs()] == [profile.PROGRAM_NAME]
            assert (await ven.program_by_name(profile.PROGRAM_NAME)) is not None

    asyncio.run(main())


def test_targeted_events_need_a_grant(vtn: Vtn) -> None:
    name = "000005:C0000001"

    async def register() -> str:
        async with vtn.ven() as ven:
            await ven.ensure_ven()
            return (await ven.ensure_resource(name)).id

    resource_id = asyncio.run(register())
    bl = vtn.bl()
    try:
        program_id = bl.post("/programs", profile.program())["id"]
        start, end = _window()
        bl.post("/events", profile.potential_request(program_id, start, end, targets=[name]))

        async def visible() -> int:
            async with vtn.ven() as ven:
                return len(await ven.events(program_id, targets=[name]))

        assert asyncio.run(visible()) == 0  # not granted yet
        ven_obj = bl.get("/vens", venName=VEN_ID)[0]
        bl.put(
            f"/resources/{resource_id}",
            BlResourceCreate(
                client_id=VEN_ID, resource_name=name, ven_id=ven_obj["id"], targets=(name,)
            ),
        )
        assert asyncio.run(visible()) == 1
    finally:
        bl.close()


# --- errors -------------------------------------------------------------------------------------


def test_4xx_surfaces_the_problem_detail(vtn: Vtn) -> None:
    async def main() -> None:
        async with vtn.ven() as ven:
            report = ReportCreate(
                event_id="no-such-event",
                client_name=VEN_ID,
                resources=(ReportResource(resource_name="x", intervals=()),),
            )
            with pytest.raises(VtnError) as info:
                await ven.put_report("no-such-report", report)
            err = info.value
            assert err.status == 404
            assert err.problem is not None and err.problem.detail
            assert err.problem.detail in str(err)
            assert str(err).startswith("PUT /reports/no-such-report: VTN answered 404")

    asyncio.run(main())


def test_plain_http_refused_unless_allowed() -> None:
    with pytest.raises(VenConfigError, match="https"):
        VenClient("http://127.0.0.1:1", VEN_ID, "s" * 20, verify=True, ven_name=VEN_ID)
    with pytest.raises(VenConfigError, match="https"):
        VenClient("ftp://127.0.0.1:1", VEN_ID, "s" * 20, verify=True, ven_name=VEN_ID)
    with pytest.raises(VenConfigError, match="verify"):
        VenClient("https://127.0.0.1:1", VEN_ID, "s" * 20, verify=False, ven_name=VEN_ID)
    with pytest.warns(PlainHttpWarning):
        client = VenClient(
            "http://127.0.0.1:1",
            VEN_ID,
            "s" * 20,
            verify=True,
            ven_name=VEN_ID,
            allow_insecure_http=True,
        )
    assert client.token_url == "http://127.0.0.1:1/auth/token"
    asyncio.run(client.close())


def test_untrusted_certificate_and_outage_are_unavailable(vtn: Vtn, tmp_path: Path) -> None:
    other = write_bundle(tmp_path / "other-ca")

    async def main() -> None:
        async with vtn.ven(verify=str(other.ca_cert)) as ven:
            with pytest.raises(VtnUnavailableError):
                await ven.programs()
        async with VenClient(
            f"https://127.0.0.1:{_free_port()}",
            VEN_ID,
            vtn.ven_secret,
            verify=vtn.ca_file,
            ven_name=VEN_ID,
            timeout_s=2,
        ) as ven:
            with pytest.raises(VtnUnavailableError):
                await ven.programs()

    asyncio.run(main())
