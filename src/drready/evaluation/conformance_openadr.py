"""E1, OpenADR 3.1 half: a black-box conformance checker for a VTN and the VENs behind it.

The checker acts as the servicer's business logic (BL) against a running VTN over HTTPS and
checks what a DR-ready deployment must show on the wire (C1: the objects are parsed with the
spec-validated models of :mod:`drready.openadr.models`, the profile with
:mod:`drready.openadr.profile`):

* **S1** — TLS only (plain HTTP to the same host:port gets no valid answer, the certificate
  verifies with the given CA), no token → 401, a forged token → 401, a read-only token cannot
  write (403), and — with two VEN credentials — one VEN cannot see the other's ven objects and
  reports (by id → 403/404, absent from lists).
* **F6** — resources exist, named as :class:`~drready.domain.DeviceId` strings (or the group
  name), stable between two reads.
* **F1** — a potential request for the next day's 10:00–14:00 is answered by every resource with
  a consistent envelope.
* **F2/F3/F4** — a small up-DR event for one resource gets a response, accepted ≤ requested, and a
  DR-aware plan whose window energy covers baseline + accepted (1 % tolerance).
* **F5** — power reports for the event carry ``DEMAND``, measured (``DIRECT_READ``) or estimated.
* **F2 by start time alone** (profile OA-F2-2, OA-F3-2; issue 17) — for one resource with up
  potential: the potential of the 4 hours from the window's end (F1), then an event with the
  direction and **no** amount starting there; the answer must be ``accepted`` with what the
  unit moves into those 4 hours — its declared up potential there (1 %) — and a plan whose
  energy in them covers baseline + accepted (1 %) on an answered interval that starts at the
  start time, or ``rejected`` with a reason and nothing to move; never ``partial``.
* **C1** — every resource and every report the VENs posted on the checker's events is valid
  against the 3.1.0 schema, each value against its enumeration's type schema or the profile's
  private type schema (:func:`~drready.evaluation.private_types.wire_problems`;
  ``docs/profile-openadr3.md`` § 10).
* **S1, hostile input** (issue 12 item 8, :mod:`drready.evaluation.openadr_probes`) — with two
  VEN credentials: no report on an event the VEN cannot see, no name squatting, strict JSON,
  deep JSON and long numbers refused (also at ``/auth/token``), no existence oracle between
  VENs. ``probes_only`` runs TLS, the program and these alone (no VEN needs to answer).

The events the checker created are deleted at the end, and so is every object the probes made;
the program (created when missing) is kept, as VENs keep its id. The shared
verdict and report types are :mod:`drready.evaluation.conformance`; ``drready conformance
openadr`` (:mod:`drready.cli.conformance`) runs it and prints the report.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo

import httpx
import jwt

from drready.domain import DeviceId, Direction, DrRequest, FlexibilityEnvelope
from drready.domain.requests import START_TIME_WINDOW
from drready.domain.time import DEFAULT_TZ
from drready.domain.tolerances import ENERGY_TOL_KWH
from drready.evaluation.conformance import Check, Report, Verdict
from drready.evaluation.openadr_probes import PROBES, ProbeVen, probe_vtn
from drready.evaluation.private_types import wire_problems
from drready.openadr import profile
from drready.openadr.models import ReadingType, from_wire, to_wire
from drready.openadr.models import Report as OadrReport
from drready.security.tls import client_ssl_context

__all__ = ["START_TIME_CHECK", "WIRE_CHECK", "check_openadr", "default_window"]

PASS, FAIL, NOT_OBSERVABLE = Verdict.PASS, Verdict.FAIL, Verdict.NOT_OBSERVABLE
PAGE = 50
TOL = ENERGY_TOL_KWH
"""Slack of the envelope checks [kW, kWh]: the domain's own comparison tolerance (F1)."""
ACCEPT_TOL_KWH = 1e-5
"""Slack of accepted ≤ requested: the request travels as kW rounded to 1e-6 (F3)."""
PLAN_TOLERANCE = 0.01
"""Relative tolerance of the plan's window energy against baseline + accepted (F4)."""
DR_SHARE = 0.5
"""Share of the resource's declared up potential the test DR event asks for (≤ 80 %)."""


WIRE_CHECK = "reports and resources valid against the 3.1.0 schema and the private type schemas"
START_TIME_CHECK = "start-time request answered"
MAX_REASON_CHARS = 500
"""Longest ``DRREADY_RESPONSE`` reason the profile allows (OA-F3-3)."""


def default_window(now: datetime | None = None) -> tuple[datetime, datetime]:
    """The next day's 10:00–14:00 in the default time zone (Asia/Tokyo)."""
    tz = ZoneInfo(DEFAULT_TZ)
    day = (now or datetime.now(tz)).astimezone(tz).date() + timedelta(days=1)
    start = datetime(day.year, day.month, day.day, 10, tzinfo=tz)
    return start, start + timedelta(hours=4)


class _StopError(Exception):
    """The checker cannot go on (no connection, no token)."""


@dataclass
class _Client:
    """One OAuth2 client of the VTN: plain httpx with its bearer token."""

    http: httpx.AsyncClient
    token: str = ""

    async def login(self, client_id: str, client_secret: str, scope: str | None = None) -> str:
        data = {
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": client_secret,
        }
        if scope is not None:
            data["scope"] = scope
        r = await self.http.post("/auth/token", data=data)
        if r.status_code != 200:
            raise _StopError(
                f"token request for {client_id!r} answered {r.status_code}: {r.text[:200]}"
            )
        body = r.json()
        self.token = str(body["access_token"])
        return str(body.get("scope", ""))

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {**self._headers(), **kwargs.pop("headers", {})}
        return await self.http.request(method, path, headers=headers, **kwargs)

    async def get_all(self, path: str, **params: Any) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        skip = 0
        while True:
            r = await self.request("GET", path, params={**params, "skip": skip, "limit": PAGE})
            if r.status_code != 200:
                raise _StopError(f"GET {path} answered {r.status_code}: {r.text[:200]}")
            page: list[dict[str, Any]] = r.json()
            out += page
            if len(page) < PAGE:
                return out
            skip += PAGE

    async def post(self, path: str, body: Any) -> dict[str, Any]:
        r = await self.request("POST", path, json=to_wire(body))
        if r.status_code != 201:
            raise _StopError(f"POST {path} answered {r.status_code}: {r.text[:200]}")
        data: dict[str, Any] = r.json()
        return data


@dataclass
class _State:
    """What the checks found so far, passed from one to the next."""

    checks: list[Check] = field(default_factory=list)
    resources: list[dict[str, Any]] = field(default_factory=list)
    program_id: str | None = None
    events: list[str] = field(default_factory=list)
    envelopes: list[FlexibilityEnvelope] = field(default_factory=list)

    def add(self, requirement: str, name: str, verdict: Verdict, evidence: list[str]) -> None:
        self.checks.append(Check(requirement, name, verdict, evidence))


async def check_openadr(
    vtn: str,
    *,
    client_id: str,
    client_secret: str,
    ca_file: str | Path | None,
    wait_s: float = 30.0,
    ven_credentials: Sequence[tuple[str, str]] | None = None,
    window: tuple[datetime, datetime] | None = None,
    poll_s: float = 0.5,
    probes_only: bool = False,
) -> Report:
    """Check the VTN at ``vtn`` (and the VENs behind it) as BL ``client_id`` (E1).

    Parameters
    ----------
    vtn : str
        Base URL of the VTN's OpenADR API (``https://host:port``).
    client_id, client_secret : str
        A BL client of the VTN.
    ca_file : path, optional
        PEM CA the VTN's certificate must chain to (None: the system store).
    wait_s : float
        Longest wait for each VEN answer (potential, plan, power report) [s].
    ven_credentials : sequence of (client_id, client_secret), optional
        VEN clients; with two, object privacy and the hostile-input probes across VENs are
        checked (the first two are used).
    window : (datetime, datetime), optional
        The DR window asked about; the next day's 10:00–14:00 by default.
    poll_s : float
        Pause between two reads while waiting [s].
    probes_only : bool
        Check TLS and run the hostile-input probes only (S1), not F1–F6.
    """
    start, end = window or default_window()
    state = _State()
    vtn = vtn.rstrip("/")
    verify: Any = client_ssl_context(ca_file) if ca_file is not None else True
    async with httpx.AsyncClient(base_url=vtn, verify=verify, timeout=15) as http:
        bl = _Client(http)
        try:
            await _check_tls(vtn, http, state)
            await bl.login(client_id, client_secret)
            if not probes_only:
                await _check_auth(http, bl, client_id, client_secret, state)
                await _check_resources(bl, state)
            await _program(bl, state)
            if not probes_only:
                await _check_potential(bl, state, start, end, wait_s, poll_s)
                await _check_dispatch(bl, state, start, end, wait_s, poll_s)
                await _check_start_time(bl, state, end, wait_s, poll_s)
                await _check_wire(bl, state)
        except (_StopError, httpx.HTTPError) as err:
            state.add("E1", "checker could go on", FAIL, [f"stopped: {err}"])
        vens: list[tuple[str, _Client]] = []
        try:
            vens = await _login_vens(http, list(ven_credentials or ())[:2])
            if not probes_only:
                await _check_privacy(vens, state)
        except (_StopError, httpx.HTTPError) as err:
            name = "VEN login" if probes_only else "object privacy across VENs"
            state.add("S1", name, FAIL, [f"stopped: {err}"])
        await _check_hostile_input(http, bl, vens, state)
        await _cleanup(bl, state)
    return Report(f"openadr {vtn}", state.checks)


# --- S1 -----------------------------------------------------------------------------------


async def _check_tls(vtn: str, http: httpx.AsyncClient, state: _State) -> None:
    parts = urlsplit(vtn)
    evidence: list[str] = []
    verdict = PASS
    if parts.scheme != "https":
        verdict = FAIL
        evidence.append(f"the VTN URL {vtn} is not https")
    plain = urlunsplit(("http", parts.netloc, parts.path, "", ""))
    try:
        async with httpx.AsyncClient(timeout=5) as raw:
            r = await raw.get(f"{plain}/programs")
        if r.is_success or r.status_code in (401, 403):
            verdict = FAIL
            evidence.append(f"plain HTTP GET {plain}/programs answered {r.status_code}")
        else:
            evidence.append(f"plain HTTP GET answered {r.status_code} (no API answer)")
    except httpx.HTTPError as err:
        evidence.append(f"plain HTTP refused: {type(err).__name__}")
    try:
        r = await http.get("/programs")
    except httpx.ConnectError as err:
        state.add("S1", "TLS only", FAIL, [*evidence, f"TLS connection failed: {err}"])
        raise _StopError("no connection to the VTN") from err
    if parts.scheme == "https":
        evidence.append("certificate verified against the given CA and host name")
    state.add("S1", "TLS only", verdict, evidence)


def _forged_token(client_id: str) -> str:
    now = int(time.time())
    claims = {
        "sub": client_id,
        "client_id": client_id,
        "scope": "read_all write_programs write_events",
        "iat": now,
        "exp": now + 300,
        "role": "bl",
    }
    return jwt.encode(claims, secrets.token_bytes(32), algorithm="HS256")


async def _check_auth(
    http: httpx.AsyncClient, bl: _Client, client_id: str, client_secret: str, state: _State
) -> None:
    r = await http.get("/programs")
    state.add(
        "S1",
        "request without a token refused",
        PASS if r.status_code == 401 else FAIL,
        [f"GET /programs without a token: {r.status_code}"],
    )
    forged = _forged_token(client_id)
    r = await http.get("/programs", headers={"Authorization": f"Bearer {forged}"})
    state.add(
        "S1",
        "forged token refused",
        PASS if r.status_code == 401 else FAIL,
        [f"GET /programs with a JWT signed by a random key: {r.status_code}"],
    )
    reader = _Client(http)
    try:
        granted = await reader.login(client_id, client_secret, scope="read_all")
    except _StopError as err:
        state.add("S1", "scope enforcement", NOT_OBSERVABLE, [f"scope request refused: {err}"])
        return
    body = profile.program(f"drready-conformance-{uuid.uuid4().hex[:8]}")
    r = await reader.request("POST", "/programs", json=to_wire(body))
    evidence = [f"token asked with scope=read_all, granted {granted!r}"]
    evidence.append(f"POST /programs with it: {r.status_code}")
    if r.status_code == 403:
        verdict = PASS
    elif r.status_code == 201:
        await bl.request("DELETE", f"/programs/{r.json()['id']}")
        verdict = FAIL if granted.split() == ["read_all"] else NOT_OBSERVABLE
        if verdict is NOT_OBSERVABLE:
            evidence.append("the VTN ignored the scope request")
    else:
        verdict = FAIL
    state.add("S1", "scope enforcement", verdict, evidence)


async def _login_vens(
    http: httpx.AsyncClient, creds: list[tuple[str, str]]
) -> list[tuple[str, _Client]]:
    clients = []
    for cid, secret in creds:
        c = _Client(http)
        await c.login(cid, secret)
        clients.append((cid, c))
    return clients


async def _check_hostile_input(
    http: httpx.AsyncClient, bl: _Client, vens: list[tuple[str, _Client]], state: _State
) -> None:
    """The hostile-input probes (:mod:`drready.evaluation.openadr_probes`), one check each."""
    if not bl.token:
        for name in PROBES:
            state.add("S1", name, NOT_OBSERVABLE, ["no BL token"])
        return
    done = len(state.checks)
    try:
        await probe_vtn(
            http, bl, [ProbeVen(cid, c) for cid, c in vens], state.program_id, state.add
        )
    except httpx.HTTPError as err:
        seen = {c.name for c in state.checks[done:]}
        for name in PROBES:
            if name not in seen:
                state.add("S1", name, FAIL, [f"stopped: {type(err).__name__}: {err}"])


async def _check_privacy(clients: list[tuple[str, _Client]], state: _State) -> None:
    name = "object privacy across VENs"
    if len(clients) < 2:
        state.add("S1", name, NOT_OBSERVABLE, ["needs two VEN credentials"])
        return
    owned: dict[str, dict[str, set[str]]] = {}
    for cid, c in clients:
        owned[cid] = {
            "vens": {str(v["id"]) for v in await c.get_all("/vens")},
            "reports": {
                str(r["id"])
                for r in await c.get_all("/reports")
                if r.get("clientID") in (None, cid)
            },
        }
    evidence: list[str] = []
    leaks: list[str] = []
    for (me, client), (other, _) in [(clients[0], clients[1]), (clients[1], clients[0])]:
        for kind in ("vens", "reports"):
            theirs = owned[other][kind] - owned[me][kind]
            if not theirs:
                continue
            listed = {str(o["id"]) for o in await client.get_all(f"/{kind}")}
            if seen := theirs & listed:
                leaks.append(f"{me} lists {len(seen)} of {other}'s {kind}")
            oid = sorted(theirs)[0]
            r = await client.request("GET", f"/{kind}/{oid}")
            if r.status_code not in (403, 404):
                leaks.append(f"{me}: GET /{kind}/{oid} of {other} answered {r.status_code}")
            evidence.append(f"{me} vs {other}'s {len(theirs)} {kind}: GET by id {r.status_code}")
    if leaks:
        state.add("S1", name, FAIL, leaks + evidence)
    elif evidence:
        state.add("S1", name, PASS, evidence)
    else:
        state.add("S1", name, NOT_OBSERVABLE, ["neither VEN owns a ven object or report"])


# --- F6 -----------------------------------------------------------------------------------


def _is_resource_name(name: str) -> bool:
    if profile.is_group_resource(name):
        return True
    try:
        DeviceId.parse(name)
    except ValueError:
        return False
    return True


async def _check_resources(bl: _Client, state: _State) -> None:
    first = await bl.get_all("/resources")
    second = await bl.get_all("/resources")
    names = [str(r.get("resourceName")) for r in first]
    bad = [n for n in names if not _is_resource_name(n)]
    same = {(r["id"], r["resourceName"]) for r in first} == {
        (r["id"], r["resourceName"]) for r in second
    }
    evidence = [f"{len(first)} resource(s): {', '.join(names[:5])}{' …' if len(names) > 5 else ''}"]
    if bad:
        evidence.append(f"not a DeviceId nor a group (FLEET-<maker code>): {bad[:10]}")
    evidence.append("stable between two reads" if same else "changed between two reads")
    ok = bool(first) and not bad and same
    state.add("F6", "resources named by DeviceId", PASS if ok else FAIL, evidence)
    state.resources = [r for r in first if _is_resource_name(str(r.get("resourceName")))]
    granted = 0
    for r in state.resources:  # BL grants each resource its name as a target (targeting)
        targets = list(r.get("targets") or [])
        if r["resourceName"] in targets:
            continue
        body = {
            "objectType": "BL_RESOURCE_REQUEST",
            "clientID": r["clientID"],
            "resourceName": r["resourceName"],
            "venID": r["venID"],
            "targets": [*targets, r["resourceName"]],
        }
        if r.get("attributes"):
            body["attributes"] = r["attributes"]
        resp = await bl.request("PUT", f"/resources/{r['id']}", json=body)
        granted += resp.status_code == 200
    if granted:
        state.checks[-1].evidence.append(f"granted {granted} resource(s) their name as a target")


async def _program(bl: _Client, state: _State) -> None:
    found = [
        p for p in await bl.get_all("/programs") if p.get("programName") == profile.PROGRAM_NAME
    ]
    if found:
        state.program_id = str(found[0]["id"])
    else:
        state.program_id = str((await bl.post("/programs", profile.program()))["id"])


# --- F1 -----------------------------------------------------------------------------------


async def _reports(bl: _Client, event_id: str) -> list[OadrReport]:
    return [from_wire(OadrReport, r) for r in await bl.get_all("/reports", eventID=event_id)]


async def _wait_report(
    bl: _Client,
    event_id: str,
    wait_s: float,
    poll_s: float,
    wanted: Callable[[OadrReport], bool],
) -> OadrReport | None:
    """The first report on ``event_id`` that ``wanted`` takes, read every ``poll_s`` seconds
    until ``wait_s`` have passed (None then)."""
    deadline = time.monotonic() + wait_s
    while True:
        for report in await _reports(bl, event_id):
            if wanted(report):
                return report
        if time.monotonic() >= deadline:
            return None
        await asyncio.sleep(poll_s)


def _envelope_problems(env: FlexibilityEnvelope, start: datetime, end: datetime) -> list[str]:
    name = str(env.device_id)
    out = []
    if (env.window_start, env.window_end) != (start, end):
        out.append(f"{name}: window {env.window_start}–{env.window_end}")
    n = round((end - start) / profile.SLOT)
    starts = [start + k * profile.SLOT for k in range(n)]
    if [s.start for s in env.slots] != starts:
        out.append(f"{name}: {len(env.slots)} slot(s), not the window's {n}")
    prev_min = prev_max = 0.0
    for s in env.slots:
        if not s.min_kw - TOL <= s.baseline_kw <= s.max_kw + TOL:
            out.append(f"{name} {s.start:%H:%M}: not min ≤ baseline ≤ max")
        if s.cum_min_kwh < prev_min - TOL or s.cum_max_kwh < prev_max - TOL:
            out.append(f"{name} {s.start:%H:%M}: cumulative bounds decrease")
        if s.cum_min_kwh > s.cum_max_kwh + TOL:
            out.append(f"{name} {s.start:%H:%M}: cumulative min above max")
        prev_min, prev_max = s.cum_min_kwh, s.cum_max_kwh
    return out


async def _check_potential(
    bl: _Client, state: _State, start: datetime, end: datetime, wait_s: float, poll_s: float
) -> None:
    assert state.program_id is not None
    names = sorted({str(r["resourceName"]) for r in state.resources})
    ask = profile.potential_request(
        state.program_id, start, end, targets=names or None, name="drready-conformance-potential"
    )
    event_id = str((await bl.post("/events", ask))["id"])
    state.events.append(event_id)
    now = datetime.now(start.tzinfo)
    found: dict[str, FlexibilityEnvelope] = {}
    problems: list[str] = []
    deadline = time.monotonic() + wait_s
    while True:
        seen: set[str] = set()
        for report in await _reports(bl, event_id):
            if report.id in seen:
                continue
            seen.add(report.id)
            try:
                envs = profile.envelopes_from_report(report, computed_at=now)
            except ValueError as err:
                problems.append(f"report {report.id}: {err}".splitlines()[0])
                continue
            for env in envs:
                found[str(env.device_id)] = env
        answered = {_name(e) for e in found.values()}
        if (names and answered >= set(names)) or (not names and found):
            break
        if time.monotonic() >= deadline:
            break
        problems.clear()
        await asyncio.sleep(poll_s)
    envelopes = list(found.values())
    state.envelopes = envelopes
    answered = {_name(e) for e in envelopes}
    missing = sorted(set(names) - answered)
    for env in envelopes:
        problems += _envelope_problems(env, start, end)
    evidence = [
        f"potential request {event_id} for {start.isoformat()}–{end.isoformat()}",
        f"{len(answered)} of {len(names) or '?'} resource(s) answered",
    ]
    if missing:
        evidence.append(f"no answer from: {', '.join(missing[:20])}")
    evidence += problems[:20]
    ok = bool(envelopes) and not missing and not problems
    state.add("F1", "potential request answered", PASS if ok else FAIL, evidence)


def _name(env: FlexibilityEnvelope) -> str:
    return profile.resource_name_of(env.device_id)


# --- F2–F5 --------------------------------------------------------------------------------


def _raw_accepted(report: OadrReport, resource: str) -> float | None:
    for res in report.resources:
        if res.resource_name != resource:
            continue
        for iv in res.intervals:
            for p in iv.payloads:
                if p.type == profile.RESPONSE and len(p.values) >= 2:
                    value = p.values[1]
                    if isinstance(value, int | float) and not isinstance(value, bool):
                        return float(value)
    return None


async def _check_dispatch(
    bl: _Client, state: _State, start: datetime, end: datetime, wait_s: float, poll_s: float
) -> None:
    names = ("F2", "DR event answered"), ("F3", "accepted ≤ requested"), ("F4", "DR-aware plan")
    candidates = [e for e in state.envelopes if e.up_kwh > TOL]
    if state.program_id is None or not candidates:
        for req, name in (*names, ("F5", "power reports")):
            state.add(req, name, NOT_OBSERVABLE, ["no resource declared up potential (F1)"])
        return
    env = max(candidates, key=lambda e: e.up_kwh)
    target = _name(env)
    request = DrRequest(
        request_id=f"drready-conformance-{uuid.uuid4().hex[:12]}",
        direction=Direction.UP,
        start=start,
        end=end,
        amount_kwh=round(DR_SHARE * env.up_kwh, 6),
        issuer="drready-conformance",
        issued_at=datetime.now(start.tzinfo),
    )
    event = await bl.post("/events", profile.dr_event(state.program_id, request, [target]))
    event_id = str(event["id"])
    state.events.append(event_id)
    head = f"DR event {event_id}: up {request.amount_kwh:.3f} kWh to {target}"
    deadline = time.monotonic() + wait_s  # the power reports' too
    plan_report = await _wait_report(
        bl, event_id, wait_s, poll_s, lambda r: _raw_accepted(r, target) is not None
    )
    if plan_report is None:
        for req, name in names:
            state.add(req, name, FAIL, [head, f"no response within {wait_s:g} s"])
        state.add("F5", "power reports", NOT_OBSERVABLE, [head, "no plan report"])
        return
    raw = _raw_accepted(plan_report, target)
    assert raw is not None
    state.add("F2", names[0][1], PASS, [head, f"report {plan_report.id} answers it"])
    ok = raw <= request.amount_kwh + ACCEPT_TOL_KWH
    state.add(
        "F3",
        names[1][1],
        PASS if ok else FAIL,
        [f"accepted {raw:.6f} of {request.amount_kwh:.6f} kWh"],
    )
    try:
        answers = [
            a
            for a in profile.answers_from_report(plan_report, request)
            if _name_of(a.response.device_id) == target
        ]
    except ValueError as err:
        state.add("F4", names[2][1], FAIL, [f"plan report off profile: {err}".splitlines()[0]])
    else:
        if not answers:
            state.add("F4", names[2][1], FAIL, [f"no plan for {target}"])
        else:
            plan = answers[0].plan
            energy = plan.window_energy_kwh(start, end)
            want = env.baseline_kwh + min(raw, request.amount_kwh)
            ok = energy >= want - PLAN_TOLERANCE * max(want, 1.0)
            state.add(
                "F4",
                names[2][1],
                PASS if ok else FAIL,
                [
                    f"plan window energy {energy:.3f} kWh; baseline {env.baseline_kwh:.3f}"
                    f" + accepted {raw:.3f} = {want:.3f} kWh (tolerance 1 %)"
                ],
            )
    await _check_power(bl, state, event_id, target, start, end, deadline, poll_s)


def _name_of(device: DeviceId) -> str:
    return profile.resource_name_of(device)


async def _check_power(
    bl: _Client,
    state: _State,
    event_id: str,
    target: str,
    start: datetime,
    end: datetime,
    deadline: float,
    poll_s: float,
) -> None:
    name = "power reports"
    while True:
        for report in await _reports(bl, event_id):
            descriptors = {str(d.payload_type): d for d in report.payload_descriptors or ()}
            if profile.DEMAND not in descriptors:
                continue
            try:
                samples = profile.samples_from_report(report)
            except ValueError as err:
                state.add("F5", name, FAIL, [f"report {report.id}: {err}".splitlines()[0]])
                return
            mine = [s for s in samples if _name_of(s.device_id) == target]
            if not mine:
                state.add("F5", name, FAIL, [f"report {report.id}: no DEMAND for {target}"])
                return
            reading = descriptors[profile.DEMAND].reading_type
            evidence = [f"report {report.id}: DEMAND {mine[0].power_w / 1000:.3f} kW"]
            if reading == ReadingType.DIRECT_READ:
                evidence.append("measured (DIRECT_READ)")
            elif reading == ReadingType.ESTIMATED:
                evidence.append("estimated (ESTIMATED)")
            else:
                state.add("F5", name, FAIL, [*evidence, f"readingType {reading!r}"])
                return
            state.add("F5", name, PASS, evidence)
            return
        if time.monotonic() >= deadline:
            break
        await asyncio.sleep(poll_s)
    now = datetime.now(start.tzinfo)
    if now < end:
        state.add(
            "F5",
            name,
            NOT_OBSERVABLE,
            [f"no power report yet; they are due during the window from {start.isoformat()}"],
        )
    else:
        state.add("F5", name, FAIL, ["no power report for the event"])


def _response_of(
    report: OadrReport, resource: str
) -> tuple[str, float, str, datetime | None] | None:
    """``DRREADY_RESPONSE`` of ``resource`` in a plan report: status, accepted kWh, reason and
    the start of the interval it answers; None when absent or not of that shape."""
    for res in report.resources:
        if res.resource_name != resource:
            continue
        for iv in res.intervals:
            for p in iv.payloads:
                if p.type != profile.RESPONSE or len(p.values) != 3:
                    continue
                status, amount, reason = p.values
                if isinstance(amount, bool) or not isinstance(amount, int | float):
                    return None
                at = iv.interval_period.start if iv.interval_period else None
                return str(status), float(amount), str(reason), at
    return None


async def _wait_envelope(
    bl: _Client, event_id: str, target: str, now: datetime, wait_s: float, poll_s: float
) -> FlexibilityEnvelope | None:
    deadline = time.monotonic() + wait_s
    while True:
        for report in await _reports(bl, event_id):
            with contextlib.suppress(ValueError):
                for env in profile.envelopes_from_report(report, computed_at=now):
                    if _name(env) == target:
                        return env
        if time.monotonic() >= deadline:
            return None
        await asyncio.sleep(poll_s)


async def _check_start_time(
    bl: _Client, state: _State, heat_from: datetime, wait_s: float, poll_s: float
) -> None:
    """F2 by start time alone (OA-F2-2): "start heating at ``heat_from``", no amount.

    The window is the 4 hours from ``heat_from`` (the end of the checked window, so that an
    earlier DR event's window is over by then and a VEN whose clock is inside it still plans
    this one). Its potential is asked first (F1, the reference); the answer must be
    ``accepted`` with that potential (1 %) and a plan covering baseline + accepted there, or
    ``rejected`` with a reason when there is nothing to move — never ``partial``."""
    name = START_TIME_CHECK
    candidates = sorted(
        (e for e in state.envelopes if e.up_kwh > TOL), key=lambda e: e.up_kwh, reverse=True
    )
    if state.program_id is None or not candidates:
        state.add("F2", name, NOT_OBSERVABLE, ["no resource declared up potential (F1)"])
        return
    # another resource than the DR event's (the largest), when there is one
    target = _name(candidates[1] if len(candidates) > 1 else candidates[0])
    start, end = heat_from, heat_from + START_TIME_WINDOW
    now = datetime.now(start.tzinfo)
    ask = profile.potential_request(
        state.program_id, start, end, targets=[target], name="drready-conformance-start-potential"
    )
    ask_id = str((await bl.post("/events", ask))["id"])
    state.events.append(ask_id)
    env = await _wait_envelope(bl, ask_id, target, now, wait_s, poll_s)
    head = f"{target}: start heating at {start.isoformat()} (window {_hours(end - start)} h)"
    if env is None:
        state.add("F2", name, FAIL, [head, f"no potential for the window within {wait_s:g} s"])
        return
    request = DrRequest.at_start_time(
        f"drready-conformance-{uuid.uuid4().hex[:12]}", start, now, end=end,
        issuer="drready-conformance",
    )  # fmt: skip
    event = await bl.post("/events", profile.dr_event(state.program_id, request, [target]))
    event_id = str(event["id"])
    state.events.append(event_id)
    head = f"event {event_id}, no amount; {head}; declared up potential {env.up_kwh:.3f} kWh"
    report = await _wait_report(
        bl, event_id, wait_s, poll_s, lambda r: _response_of(r, target) is not None
    )
    if report is None:
        state.add("F2", name, FAIL, [head, f"no response within {wait_s:g} s"])
        return
    answer = _response_of(report, target)
    assert answer is not None
    status, accepted, reason, answered_at = answer
    evidence = [head, f"report {report.id}: {status} {accepted:.6f} kWh, reason {reason!r}"]
    problems = _start_time_problems(status, accepted, reason, answered_at, env, start)
    if not problems and status == "accepted":
        problems += _start_time_plan_problems(report, request, target, env, accepted, evidence)
    state.add("F2", name, FAIL if problems else PASS, evidence + problems)


def _start_time_problems(
    status: str,
    accepted: float,
    reason: str,
    answered_at: datetime | None,
    env: FlexibilityEnvelope,
    start: datetime,
) -> list[str]:
    """What an answer to an event by start time alone breaks of OA-F3-1…3 (none: conformant)."""
    out = []
    if len(reason) > MAX_REASON_CHARS:
        out.append(f"reason of {len(reason)} characters (at most {MAX_REASON_CHARS})")
    if answered_at != start:
        out.append(f"the answer's interval starts at {answered_at}, not at the start time")
    tol = PLAN_TOLERANCE * max(env.up_kwh, 1.0)
    if status == "accepted":
        if not abs(accepted - env.up_kwh) <= tol:
            out.append(
                f"accepted {accepted:.6f} kWh, not what the unit can move into the window: its "
                f"declared up potential {env.up_kwh:.6f} kWh (tolerance 1 %)"
            )
    elif status == "rejected":
        if accepted != 0.0 or not reason.strip():
            out.append("a rejection must accept 0 kWh and give its reason")
        if env.up_kwh > tol:
            out.append(f"rejected though {env.up_kwh:.3f} kWh of up potential was declared")
    else:
        out.append(f"status {status!r}: an open request is 'accepted' or 'rejected'")
    return out


def _start_time_plan_problems(
    report: OadrReport,
    request: DrRequest,
    target: str,
    env: FlexibilityEnvelope,
    accepted: float,
    evidence: list[str],
) -> list[str]:
    """The plan of an accepted start-time request heats from the start time: its energy in the
    window covers baseline + accepted (1 %)."""
    try:
        answers = [
            a
            for a in profile.answers_from_report(report, request)
            if _name_of(a.response.device_id) == target
        ]
    except ValueError as err:
        return [f"plan report off profile: {err}".splitlines()[0]]
    if not answers:
        return [f"no plan for {target}"]
    energy = answers[0].plan.window_energy_kwh(request.start, request.end)
    want = env.baseline_kwh + accepted
    evidence.append(
        f"plan energy {energy:.3f} kWh from the start time; baseline {env.baseline_kwh:.3f} "
        f"+ accepted {accepted:.3f} = {want:.3f} kWh (tolerance 1 %)"
    )
    if energy >= want - PLAN_TOLERANCE * max(want, 1.0):
        return []
    return ["the plan does not heat the accepted energy from the start time"]


def _hours(span: timedelta) -> str:
    return f"{span.total_seconds() / 3600:g}"


async def _check_wire(bl: _Client, state: _State) -> None:
    """C1: the resources and the reports on the checker's events, as the VTN holds them, are
    valid 3.1.0 objects with every value within its type's schema (profile § 10)."""
    problems: list[str] = []
    seen = 0
    for r in state.resources:
        seen += 1
        problems += [f"resource {r.get('resourceName')}: {p}" for p in wire_problems("resource", r)]
    for event_id in state.events:
        for report in await bl.get_all("/reports", eventID=event_id):
            seen += 1
            problems += [f"report {report.get('id')}: {p}" for p in wire_problems("report", report)]
    verdict = NOT_OBSERVABLE if not seen else FAIL if problems else PASS
    state.add("C1", WIRE_CHECK, verdict, [f"{seen} object(s) checked", *problems[:20]])


# --- cleanup and CLI ------------------------------------------------------------------------


async def _cleanup(bl: _Client, state: _State) -> None:
    if not bl.token:
        return
    for event_id in state.events:
        with contextlib.suppress(httpx.HTTPError):
            await bl.request("DELETE", f"/events/{event_id}")
