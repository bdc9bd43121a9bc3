"""E1/S1: hostile-input probes of any OpenADR 3.1 VTN, black-box (issue 12 item 8).

What a maker or an aggregator can check about a VTN before trusting it with other parties'
VENs, with the credentials of the BL and of two VENs, A and B. Each probe is one
:class:`~drready.evaluation.conformance.Check` (requirement S1):

* **report on an invisible event** — A posts a report on an event only B can see: refused with
  the answer of a missing event (404), and the BL's listing shows no report of A on it;
* **name squatting** — A creates (and renames its own resource to) a resource named like B's,
  and a ven named like B's: 409 each, and A holds no resource of that name afterwards;
* **strict JSON** — ``NaN``, ``Infinity``, ``-Infinity``, ``1e400`` in report and event values,
  U+0000 in names: 400 naming the field, never stored, never 5xx (RFC 8259 §6, §8.2);
* **deep JSON** — arrays nested 1 200 deep and a 5 000-digit number, in a report and at the
  unauthenticated ``/auth/token``: 400 (``/auth/token`` may answer 415 if it takes no JSON),
  never 5xx;
* **existence oracle** — A reading, replacing and deleting B's ven, resource, report and event
  by id gets exactly what it gets for ids that do not exist: same status, same media type, same
  body keys, same detail once the id is masked.

The probes make their own objects and delete them afterwards (each by its creator): two vens named
``drready-conformance-<tag>-a|b`` that BL creates for A and B with a target of their own
(``drready-conformance-<tag>-a|b``), one resource of B named like a DeviceId
(``000000:CONF<tag>``), one event per ven targeted at its target (a ``SIMPLE`` payload; a VEN
skips events that target none of its resources) and a report of B. Nothing of the VENs' own
objects is read or changed. :func:`probe_vtn` runs them; with fewer than two VENs the probes
that need them are ``not observable`` and the others run with what there is.
"""

from __future__ import annotations

import contextlib
import json
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from drready.domain import DeviceId
from drready.evaluation.conformance import Verdict

__all__ = [
    "DEEP_JSON",
    "EXISTENCE_ORACLE",
    "INVISIBLE_EVENT",
    "NAME_SQUATTING",
    "PROBES",
    "STRICT_JSON",
    "Api",
    "ProbeVen",
    "probe_vtn",
]

PASS, FAIL, NOT_OBSERVABLE = Verdict.PASS, Verdict.FAIL, Verdict.NOT_OBSERVABLE

INVISIBLE_EVENT = "report on an invisible event refused"
NAME_SQUATTING = "no name squatting across VENs"
STRICT_JSON = "strict JSON: NaN, Infinity, 1e400, NUL refused"
DEEP_JSON = "deep JSON and long numbers refused"
EXISTENCE_ORACLE = "no existence oracle across VENs"
PROBES = (INVISIBLE_EVENT, NAME_SQUATTING, STRICT_JSON, DEEP_JSON, EXISTENCE_ORACLE)
"""The names of the five S1 checks, in the order they are reported."""

DEPTH = 1_200
"""Nesting of the deep-JSON body [levels]: past Python's default recursion limit (1 000)."""
DIGITS = 5_000
"""Digits of the long number: past Python's int-conversion limit (4 300)."""
_PLACEHOLDER = 0.123456789
"""A report or event value the strict-JSON probe replaces with a refused literal."""
_NUL_MARK = "drready-conformance-nul"
"""A name the strict-JSON probe replaces with one holding U+0000."""

Add = Callable[[str, str, Verdict, list[str]], None]
"""Records one check: requirement, name, verdict, evidence."""


class Api(Protocol):
    """An authenticated client of the VTN (base URL, bearer token of one OAuth2 client)."""

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response: ...


@dataclass
class ProbeVen:
    """A VEN client of the VTN: its OAuth2 client id and its authenticated :class:`Api`."""

    client_id: str
    api: Api


@dataclass
class _Fixture:
    """What the probes created: deleted at the end, last created first, by the client that
    created it (a BL token cannot delete a VEN's report: write_reports is a VEN scope)."""

    tag: str
    program_id: str
    ven_a: str = ""
    ven_b: str = ""
    ven_b_name: str = ""
    resource_b: str = ""
    resource_b_name: str = ""
    event_a: str = ""
    event_b: str = ""
    report_b: str = ""
    created: list[tuple[Api, str]] = field(default_factory=list)

    def target(self, who: str) -> str:
        return f"drready-conformance-{self.tag}-{who}"


def _event(program_id: str, name: str, target: str, value: object = 0) -> dict[str, Any]:
    return {
        "programID": program_id,
        "eventName": name,
        "targets": [target],
        "intervals": [{"id": 0, "payloads": [{"type": "SIMPLE", "values": [value]}]}],
    }


def _report(event_id: str, resource: str, value: object = 0.5) -> dict[str, Any]:
    return {
        "eventID": event_id,
        "clientName": "drready-conformance",
        "resources": [
            {
                "resourceName": resource,
                "intervals": [{"id": 0, "payloads": [{"type": "DEMAND", "values": [value]}]}],
            }
        ],
    }


def _json_body(text: str) -> dict[str, Any]:
    return {"content": text.encode(), "headers": {"Content-Type": "application/json"}}


def _id_of(r: httpx.Response) -> str:
    try:
        return str(r.json()["id"])
    except (ValueError, KeyError, TypeError):
        return ""


async def _created(api: Api, path: str, body: dict[str, Any], fixture: _Fixture) -> str:
    """POST ``body``; the new object's id (remembered for deletion), or "" when refused."""
    r = await api.request("POST", path, json=body)
    oid = _id_of(r) if r.status_code == 201 else ""
    if oid:
        fixture.created.append((api, f"{path}/{oid}"))
    return oid


def _line(what: str, r: httpx.Response) -> str:
    detail = _detail(r)
    return f"{what}: {r.status_code}" + (f" ({detail[:120]})" if detail else "")


def _detail(r: httpx.Response) -> str:
    try:
        body = r.json()
    except ValueError:
        return r.text[:200]
    if isinstance(body, dict):
        return str(body.get("detail") or body.get("error_description") or "")
    return ""


# --- setup and cleanup --------------------------------------------------------------------------


async def _setup(bl: Api, a: ProbeVen, b: ProbeVen, program_id: str) -> tuple[_Fixture, list[str]]:
    """Vens for A and B with a target each, B's resource, one event per target, B's report."""
    tag = uuid.uuid4().hex[:8]
    fx = _Fixture(tag=tag, program_id=program_id)
    problems: list[str] = []
    for who, ven in (("a", a), ("b", b)):
        body = {
            "objectType": "BL_VEN_REQUEST",
            "clientID": ven.client_id,
            "venName": fx.target(who),
            "targets": [fx.target(who)],
        }
        oid = await _created(bl, "/vens", body, fx)
        if not oid:
            problems.append(f"BL could not create a ven for {ven.client_id}")
        setattr(fx, f"ven_{who}", oid)
    fx.ven_b_name = fx.target("b")
    fx.resource_b_name = str(DeviceId(maker_code="000000", serial=f"CONF{tag}"))
    if fx.ven_b:
        body = {
            "objectType": "VEN_RESOURCE_REQUEST",
            "resourceName": fx.resource_b_name,
            "venID": fx.ven_b,
        }
        fx.resource_b = await _created(b.api, "/resources", body, fx)
        if not fx.resource_b:
            problems.append(f"{b.client_id} could not create a resource in its ven")
    for who in ("a", "b"):
        body = _event(program_id, f"drready-conformance-{tag}-{who}", fx.target(who))
        oid = await _created(bl, "/events", body, fx)
        if not oid:
            problems.append(f"BL could not create an event targeted at {fx.target(who)}")
        setattr(fx, f"event_{who}", oid)
    if fx.event_b and fx.resource_b:
        fx.report_b = await _created(b.api, "/reports", _report(fx.event_b, fx.resource_b_name), fx)
        if not fx.report_b:
            problems.append(f"{b.client_id} could not report on the event it sees")
    return fx, problems


async def _cleanup(fixture: _Fixture) -> None:
    for api, path in reversed(fixture.created):
        with contextlib.suppress(httpx.HTTPError):
            await api.request("DELETE", path)


# --- the probes ---------------------------------------------------------------------------------


async def _invisible_event(bl: Api, a: ProbeVen, b: ProbeVen, fx: _Fixture, add: Add) -> None:
    missing = f"drreadyconformance{fx.tag}missing"
    seen_b = await b.api.request("GET", f"/events/{fx.event_b}")
    seen_a = await a.api.request("GET", f"/events/{fx.event_b}")
    evidence = [
        f"event {fx.event_b} targets {fx.target('b')}, granted to {b.client_id} only",
        f"GET it as {b.client_id}: {seen_b.status_code}; as {a.client_id}: {seen_a.status_code}",
    ]
    if seen_a.status_code == 200:
        add("S1", INVISIBLE_EVENT, FAIL, [*evidence, f"{a.client_id} reads B's event"])
        return
    r = await a.api.request("POST", "/reports", json=_report(fx.event_b, fx.resource_b_name))
    if r.status_code == 201 and _id_of(r):
        fx.created.append((a.api, f"/reports/{_id_of(r)}"))
    gone = await a.api.request("POST", "/reports", json=_report(missing, fx.resource_b_name))
    evidence += [
        _line(f"{a.client_id} reports on it", r),
        _line(f"{a.client_id} reports on a missing event", gone),
    ]
    listed = await bl.request("GET", "/reports", params={"eventID": fx.event_b})
    theirs = []
    if listed.status_code == 200 and isinstance(listed.json(), list):
        theirs = [x for x in listed.json() if x.get("clientID") == a.client_id]
    if theirs:
        evidence.append(f"BL lists {len(theirs)} report(s) of {a.client_id} on it")
    ok = r.status_code == 404 == gone.status_code and not theirs
    if r.status_code == 404 and gone.status_code != 404:
        evidence.append("a missing event is answered differently")
    add("S1", INVISIBLE_EVENT, PASS if ok else FAIL, evidence)


async def _name_squatting(bl: Api, a: ProbeVen, fx: _Fixture, add: Add) -> None:
    name = fx.resource_b_name
    evidence = [f"{fx.resource_b_name} is a resource of B; {fx.ven_b_name} B's ven"]
    squat = {"objectType": "VEN_RESOURCE_REQUEST", "resourceName": name, "venID": fx.ven_a}
    r = await a.api.request("POST", "/resources", json=squat)
    if r.status_code == 201 and _id_of(r):
        fx.created.append((a.api, f"/resources/{_id_of(r)}"))
    results = [r.status_code]
    evidence.append(_line(f"{a.client_id} creates a resource named {name}", r))
    own_name = str(DeviceId(maker_code="000000", serial=f"CONF{fx.tag}A"))
    own = await _created(
        a.api,
        "/resources",
        {"objectType": "VEN_RESOURCE_REQUEST", "resourceName": own_name, "venID": fx.ven_a},
        fx,
    )
    if own:
        renamed = {**squat, "resourceName": name}
        r = await a.api.request("PUT", f"/resources/{own}", json=renamed)
        results.append(r.status_code)
        evidence.append(_line(f"{a.client_id} renames its resource {own_name} to {name}", r))
    else:
        evidence.append(f"{a.client_id} could not create a resource of its own: rename not tried")
    ven = {"objectType": "VEN_VEN_REQUEST", "venName": fx.ven_b_name}
    r = await a.api.request("POST", "/vens", json=ven)
    if r.status_code == 201 and _id_of(r):
        fx.created.append((a.api, f"/vens/{_id_of(r)}"))
    results.append(r.status_code)
    evidence.append(_line(f"{a.client_id} creates a ven named {fx.ven_b_name}", r))
    held = await a.api.request("GET", "/resources", params={"resourceName": name})
    holds = held.status_code == 200 and bool(held.json())
    if holds:
        evidence.append(f"{a.client_id} now holds a resource named {name}")
    ok = all(s == 409 for s in results) and not holds
    add("S1", NAME_SQUATTING, PASS if ok else FAIL, evidence)


_REFUSED_NUMBERS = ("NaN", "Infinity", "-Infinity", "1e400")


async def _strict_json(bl: Api, a: ProbeVen | None, fx: _Fixture | None, add: Add) -> None:
    cases: list[tuple[str, Api, str, str, str]] = []  # what, client, path, body text, field
    evidence: list[str] = []
    if a is not None and fx is not None and fx.event_a:
        # a valid report first: a refusal below is then the value's, not the report's
        control = await a.api.request("POST", "/reports", json=_report(fx.event_a, _NUL_MARK))
        if control.status_code == 201 and _id_of(control):
            fx.created.append((a.api, f"/reports/{_id_of(control)}"))
            report = json.dumps(_report(fx.event_a, _NUL_MARK, _PLACEHOLDER))
            for literal in _REFUSED_NUMBERS:
                body = report.replace(repr(_PLACEHOLDER), literal)
                cases.append((f"report value {literal}", a.api, "/reports", body, "values"))
            body = report.replace(_NUL_MARK, "drready\\u0000conformance")
            cases.append(
                ("report resourceName with U+0000", a.api, "/reports", body, "resourceName")
            )
        else:
            what = f"a valid report on an event {a.client_id} sees"
            evidence.append("report bodies not tried: " + _line(what, control))
    else:
        evidence.append("report bodies not tried: needs two VEN credentials")
    if fx is not None:
        event = json.dumps(_event(fx.program_id, _NUL_MARK, fx.target("nobody"), _PLACEHOLDER))
        for literal in ("NaN", "1e400"):
            body = event.replace(repr(_PLACEHOLDER), literal)
            cases.append((f"event value {literal}", bl, "/events", body, "values"))
        body = event.replace(_NUL_MARK, "drready\\u0000conformance")
        cases.append(("event eventName with U+0000", bl, "/events", body, "eventName"))
    if not cases:
        add("S1", STRICT_JSON, NOT_OBSERVABLE, [*evidence, "no program to post events to"])
        return
    failed = False
    for what, api, path, body, field_name in cases:
        r = await api.request("POST", path, **_json_body(body))
        if 200 <= r.status_code < 300:
            if _id_of(r) and fx is not None:
                fx.created.append((api, f"{path}/{_id_of(r)}"))
            failed = True
            evidence.append(f"{what}: {r.status_code}, accepted")
        elif r.status_code != 400 or field_name not in r.text:
            failed = True
            evidence.append(_line(f"{what}: not 400 naming {field_name}", r))
        else:
            evidence.append(_line(what, r))
    add("S1", STRICT_JSON, FAIL if failed else PASS, evidence)


def _long_number() -> str:
    return "1" + "2" * (DIGITS - 1)


async def _deep_json(
    http: httpx.AsyncClient, a: ProbeVen | None, fx: _Fixture | None, add: Add
) -> None:
    deep = "[" * DEPTH + "]" * DEPTH
    token_cases = [
        (f"/auth/token, arrays {DEPTH} deep", deep),
        (
            f"/auth/token, client_secret a {DIGITS}-digit number",
            '{"grant_type": "client_credentials", "client_id": "drready-conformance-probe", '
            f'"client_secret": {_long_number()}}}',
        ),
    ]
    evidence: list[str] = []
    failed = False
    for what, body in token_cases:
        r = await http.post("/auth/token", **_json_body(body))
        if r.status_code not in (400, 415):
            failed = True
            evidence.append(_line(f"{what}: not 400", r))
        else:
            evidence.append(_line(what, r))
    if a is not None and fx is not None and fx.event_a:
        report = json.dumps(_report(fx.event_a, fx.resource_b_name, _PLACEHOLDER))
        cases = [
            (f"report, arrays {DEPTH} deep", deep),
            (
                f"report value a {DIGITS}-digit number",
                report.replace(repr(_PLACEHOLDER), _long_number()),
            ),
        ]
        for what, body in cases:
            r = await a.api.request("POST", "/reports", **_json_body(body))
            if r.status_code == 201 and _id_of(r):
                fx.created.append((a.api, f"/reports/{_id_of(r)}"))
            if r.status_code != 400:
                failed = True
                evidence.append(_line(f"{what}: not 400", r))
            else:
                evidence.append(_line(what, r))
    else:
        evidence.append("report bodies not tried: needs two VEN credentials")
    add("S1", DEEP_JSON, FAIL if failed else PASS, evidence)


def _shape(r: httpx.Response, oid: str) -> tuple[object, ...]:
    """What an answer tells: status, media type, body keys, detail with the id masked."""
    media = r.headers.get("content-type", "").split(";")[0].strip()
    try:
        body = r.json()
    except ValueError:
        body = r.text
    keys: tuple[str, ...] = tuple(sorted(body)) if isinstance(body, dict) else ()
    text = _detail(r) if isinstance(body, dict) else str(body)
    return (r.status_code, media, keys, re.sub(re.escape(oid), "<id>", text))


async def _existence_oracle(a: ProbeVen, fx: _Fixture, add: Add) -> None:
    missing = f"drreadyconformance{fx.tag}missing"
    ven_put = {"objectType": "VEN_VEN_REQUEST", "venName": f"drready-conformance-{fx.tag}-x"}
    resource_put = {
        "objectType": "VEN_RESOURCE_REQUEST",
        "resourceName": str(DeviceId(maker_code="000000", serial=f"CONF{fx.tag}X")),
        "venID": fx.ven_a,
    }
    probes: list[tuple[str, str, str, dict[str, Any] | None]] = [
        ("GET", "events", fx.event_b, None),
        ("GET", "vens", fx.ven_b, None),
        ("PUT", "vens", fx.ven_b, ven_put),
        ("GET", "resources", fx.resource_b, None),
        ("PUT", "resources", fx.resource_b, resource_put),
        ("GET", "reports", fx.report_b, None),
        ("PUT", "reports", fx.report_b, _report(fx.event_a, fx.resource_b_name)),
        ("DELETE", "reports", fx.report_b, None),
        ("DELETE", "resources", fx.resource_b, None),
    ]
    evidence: list[str] = []
    leaks: list[str] = []
    for method, kind, oid, body in probes:
        if not oid:
            evidence.append(f"{method} /{kind}/…: B has no such object, not tried")
            continue
        kwargs: dict[str, Any] = {} if body is None else {"json": body}
        theirs = await a.api.request(method, f"/{kind}/{oid}", **kwargs)
        none = await a.api.request(method, f"/{kind}/{missing}", **kwargs)
        if 200 <= theirs.status_code < 300:
            leaks.append(f"{method} /{kind}/{oid} of B answered {theirs.status_code}")
            continue
        if _shape(theirs, oid) != _shape(none, missing):
            leaks.append(
                f"{method} /{kind}: B's → {theirs.status_code} {_detail(theirs)[:80]!r}, "
                f"missing → {none.status_code} {_detail(none)[:80]!r}"
            )
        else:
            evidence.append(f"{method} /{kind}/{{B's | missing}}: both {theirs.status_code}")
    if leaks:
        add("S1", EXISTENCE_ORACLE, FAIL, leaks + evidence)
    elif any(" both " in e for e in evidence):
        add("S1", EXISTENCE_ORACLE, PASS, evidence)
    else:
        add("S1", EXISTENCE_ORACLE, NOT_OBSERVABLE, evidence)


# --- entry --------------------------------------------------------------------------------------


async def probe_vtn(
    http: httpx.AsyncClient,
    bl: Api,
    vens: Sequence[ProbeVen],
    program_id: str | None,
    add: Add,
) -> None:
    """Run the five probes against the VTN behind ``http`` (see the module docstring).

    ``bl`` is an authenticated BL client, ``vens`` up to two authenticated VEN clients (A, B),
    ``program_id`` a program the events may belong to (None: no event can be made), ``add``
    records each check. Every object the probes made is deleted by ``bl`` before returning.
    """
    a, b = (vens[0], vens[1]) if len(vens) >= 2 else (None, None)
    fixture: _Fixture | None = None
    problems: list[str] = []
    try:
        if a is not None and b is not None and program_id is not None:
            fixture, problems = await _setup(bl, a, b, program_id)
        elif program_id is not None:
            fixture = _Fixture(tag=uuid.uuid4().hex[:8], program_id=program_id)
        two = fixture is not None and a is not None and b is not None
        why = "needs two VEN credentials and a program" if not two else "; ".join(problems)
        if two and a is not None and b is not None and fixture is not None and not problems:
            await _invisible_event(bl, a, b, fixture, add)
            await _name_squatting(bl, a, fixture, add)
        else:
            add("S1", INVISIBLE_EVENT, NOT_OBSERVABLE, [why])
            add("S1", NAME_SQUATTING, NOT_OBSERVABLE, [why])
        usable = a if two and not problems else None
        await _strict_json(bl, usable, fixture, add)
        await _deep_json(http, usable, fixture if usable else None, add)
        if usable is not None and fixture is not None:
            await _existence_oracle(usable, fixture, add)
        else:
            add("S1", EXISTENCE_ORACLE, NOT_OBSERVABLE, [why])
    finally:
        if fixture is not None:
            await _cleanup(fixture)
