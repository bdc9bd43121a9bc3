"""The VTN under well-formed but hostile input (S1, issue 12 items 1 and 7; C1, issue 16 item 3),
through its HTTP API on SQLite and PostgreSQL, the fast path and FastAPI's path alike:

* strict JSON: NaN/Infinity, numbers that overflow or run long, deep nesting, U+0000 and lone
  surrogates, other encodings → 400 naming the field, never 5xx, no traceback in the log (also
  at the unauthenticated ``/auth/token``);
* unknown properties ignored, logged in one line and never stored (refused with
  ``strict_input``); errors name wire fields (``objectType``), never pydantic's names;
* a VEN reports only on events it can see, reads by id the events targeted at it, and no
  answer tells another VEN's object from a missing one (events, programs, ven and resource
  names);
* the SQLite files the VTN creates are 0600, its directories 0700.
"""

from __future__ import annotations

import json
import logging
import math
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drready.openadr.vtn import VtnSettings, create_app
from drready.security.strict_json import loads as strict_loads
from tests.test_vtn_api import SECRETS, fetch_token, make_registry
from tests.test_vtn_fastpath import _without_fast_paths

REPORT_VALUE = "resources.0.intervals.0.payloads.0.values.0"


class Client:
    """A TestClient with a token per client id."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.tokens = {who: fetch_token(client, who) for who in SECRETS}

    def h(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def send(self, method: str, who: str, url: str, body: Any = None, **kw: Any) -> httpx.Response:
        resp: httpx.Response
        if isinstance(body, bytes):
            headers = {**self.h(who), "Content-Type": "application/json"}
            resp = self.client.request(method, url, headers=headers, content=body, **kw)
        else:
            resp = self.client.request(method, url, headers=self.h(who), json=body, **kw)
        return resp

    def ok(
        self, method: str, who: str, url: str, body: Any = None, status: int = 201, **kw: Any
    ) -> Any:
        resp = self.send(method, who, url, body, **kw)
        assert resp.status_code == status, resp.text
        return resp.json()


def _app(database_url: str, **extra: Any) -> Any:
    registry = make_registry()
    settings_ = VtnSettings(database_url=database_url, base_url="https://vtn.test", **extra)
    return create_app(settings_, registry, settings_.token_service(registry))


@pytest.fixture
def vtn(db_url: str) -> Iterator[Client]:
    with TestClient(_app(db_url), base_url="https://vtn.test") as client:
        yield Client(client)


@pytest.fixture
def both_paths(db_url: str) -> Iterator[tuple[Client, Client]]:
    """The VTN with its fast paths, and the same VTN (same database) with FastAPI only."""
    fast, plain = _app(db_url), _without_fast_paths(_app(db_url))
    with (
        TestClient(fast, base_url="https://vtn.test") as a,
        TestClient(plain, base_url="https://vtn.test") as b,
    ):
        yield Client(a), Client(b)


def _seed(vtn: Client) -> dict[str, Any]:
    """A program, ven-a granted ``unit-a`` (by its resource), ven-b granted ``group-b``; events:
    public, ven-a's, ven-b's."""
    program = vtn.ok("POST", "bl", "/programs", {"programName": "dr-ready"})
    ven_a = vtn.ok(
        "POST",
        "bl",
        "/vens",
        {"objectType": "BL_VEN_REQUEST", "clientID": "ven-a", "venName": "gateway-a"},
    )
    vtn.ok(
        "POST",
        "bl",
        "/resources",
        {
            "objectType": "BL_RESOURCE_REQUEST",
            "clientID": "ven-a",
            "resourceName": "000005:HW-A",
            "venID": ven_a["id"],
            "targets": ["unit-a"],
        },
    )
    ven_b = vtn.ok(
        "POST",
        "bl",
        "/vens",
        {
            "objectType": "BL_VEN_REQUEST",
            "clientID": "ven-b",
            "venName": "cloud-b",
            "targets": ["group-b"],
        },
    )

    def event(targets: list[str] | None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "programID": program["id"],
            "intervals": [{"id": 0, "payloads": [{"type": "SIMPLE", "values": [1]}]}],
        }
        if targets is not None:
            body["targets"] = targets
        return dict(vtn.ok("POST", "bl", "/events", body))

    return {
        "program": program,
        "ven_a": ven_a,
        "ven_b": ven_b,
        "public": event(None),
        "for_a": event(["unit-a", "other"]),
        "for_b": event(["group-b"]),
    }


def report(event_id: str, value: str = "0.4", **extra: Any) -> bytes:
    body = {
        "eventID": event_id,
        "clientName": "gateway-a",
        "resources": [
            {
                "resourceName": "000005:HW-A",
                "intervals": [{"id": 0, "payloads": [{"type": "USAGE", "values": ["VALUE"]}]}],
            }
        ],
        **extra,
    }
    return json.dumps(body).replace('"VALUE"', value).encode()


def problem(resp: httpx.Response, status: int) -> str:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    detail: str = resp.json()["detail"]
    return detail


def _no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    bad = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not bad, [r.getMessage() for r in bad]


# --- strict JSON ------------------------------------------------------------------------------

HOSTILE_VALUES = [
    ("NaN", "NaN is not a JSON number"),
    ("Infinity", "Infinity is not a JSON number"),
    ("-Infinity", "-Infinity is not a JSON number"),
    ("1e400", "out of the finite range"),
    ("-1e400", "out of the finite range"),
    ("1" + "0" * 400 + ".0", "longer than 100 characters"),
    ("9" * 5000, "longer than 100 characters"),
    ("0." + "0" * 200 + "1", "longer than 100 characters"),
    ('"a\\u0000b"', "U+0000"),
    ('"\\ud800"', "surrogate"),
]


@pytest.mark.parametrize(("value", "reason"), HOSTILE_VALUES)
def test_hostile_report_values_are_400_naming_the_field_on_both_paths(
    both_paths: tuple[Client, Client],
    value: str,
    reason: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fast, plain = both_paths
    seeded = _seed(fast)
    body = report(seeded["public"]["id"], value)
    answers = [c.send("POST", "ven-a", "/reports", body) for c in (fast, plain)]
    assert answers[0].content == answers[1].content
    detail = problem(answers[0], 400)
    if reason == "surrogate":  # pydantic's parser refuses it before strict JSON's names it
        assert "surrogate" in detail or "hex escape" in detail, detail
    else:
        assert detail.startswith(f"{REPORT_VALUE}: "), detail
        assert reason in detail, detail
    assert fast.send("GET", "bl", "/reports").json() == []  # nothing stored
    _no_tracebacks(caplog)


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (b"[" * 5000 + b"]" * 5000, "body: arrays and objects nested deeper than 32"),
        (b'{"a":' * 33 + b"1" + b"}" * 33, "body: arrays and objects nested deeper than 32"),
        (b'{"programName": "p\\u0000"}', "programName: U+0000"),
        (b'{"programName": "p", "x\\u0000y": 1}', '"x\\u0000y": property name: U+0000'),
        ('{"programName": "ü"}'.encode("utf-16"), "body: not UTF-8"),
        (b'{"programName": "\xff"}', "body: not UTF-8"),
        (b'{"programName": "p", "attributes": [{"type": "X", "values": [NaN]}]}', "attributes"),
    ],
)
def test_hostile_documents_are_400(
    vtn: Client, body: bytes, where: str, caplog: pytest.LogCaptureFixture
) -> None:
    detail = problem(vtn.send("POST", "bl", "/programs", body), 400)
    assert detail.startswith(where), detail
    _no_tracebacks(caplog)


def test_nan_in_an_event_is_400_not_null(vtn: Client) -> None:
    seeded = _seed(vtn)
    event = {
        "programID": seeded["program"]["id"],
        "intervals": [{"id": 0, "payloads": [{"type": "PRICE", "values": ["VALUE"]}]}],
    }
    raw = json.dumps(event).replace('"VALUE"', "NaN").encode()
    detail = problem(vtn.send("POST", "bl", "/events", raw), 400)
    assert detail.startswith("intervals.0.payloads.0.values.0: NaN"), detail
    put = vtn.send("PUT", "bl", f"/events/{seeded['public']['id']}", raw)
    assert problem(put, 400).startswith("intervals.0.payloads.0.values.0: NaN")


@pytest.mark.parametrize(
    "period",
    [
        {"start": "9999-12-31T23:00:00Z", "duration": "PT2H"},  # ends after year 9999
        {"start": "2030-01-01T00:00:00Z", "duration": "P99999999999D"},  # beyond a timedelta
        {"start": "2030-01-01T00:00:00Z", "duration": "PT99999999999999999999H"},
        {"start": "2030-01-01T00:00:00Z", "duration": "-P999999999D"},  # before year 1
        {"start": "0001-01-01T00:00:00+14:00", "duration": "PT1H"},  # year 0 in UTC
    ],
)
def test_events_ending_beyond_the_calendar_are_open_ended_not_500(
    vtn: Client, period: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    seeded = _seed(vtn)
    body = {
        "programID": seeded["program"]["id"],
        "intervalPeriod": period,
        "intervals": [{"id": 0, "payloads": [{"type": "SIMPLE", "values": [1]}]}],
    }
    created = vtn.ok("POST", "bl", "/events", body)
    active = vtn.ok("GET", "bl", "/events", status=200, params={"active": "true"})
    assert created["id"] in [e["id"] for e in active]  # open-ended: still active
    _no_tracebacks(caplog)


def test_ven_and_resource_bodies_and_queries_refuse_nul(
    vtn: Client, caplog: pytest.LogCaptureFixture
) -> None:
    deep = b'{"objectType": "VEN_VEN_REQUEST", "venName": ' + b"[" * 3000 + b"]" * 3000 + b"}"
    assert "nested deeper" in problem(vtn.send("POST", "ven-a", "/vens", deep), 400)
    nul = {"objectType": "VEN_VEN_REQUEST", "venName": "gate\x00way"}
    assert problem(vtn.send("POST", "ven-a", "/vens", nul), 400).startswith("venName: U+0000")
    for url, params in (
        ("/events", {"targets": "a\x00b"}),
        ("/programs", {"targets": "a\x00b"}),
        ("/vens", {"venName": "a\x00b"}),
        ("/resources", {"resourceName": "a\x00b"}),
        ("/reports", {"clientName": "a\x00b"}),
    ):
        for who in ("bl", "ven-a"):
            problem(vtn.send("GET", who, url, params=params), 400)
    _no_tracebacks(caplog)


@pytest.mark.parametrize(
    ("content", "media"),
    [
        (b"[" * 5000 + b"]" * 5000, "application/json"),
        (b'{"grant_type": "client_credentials", "client_id": ' + b"9" * 5000 + b"}", None),
        (b'{"grant_type": "client_credentials", "client_id": NaN}', None),
        (b'{"grant_type": "client_credentials", "client_id": "bl\\u0000"}', None),
        (b"grant_type=client_credentials&client_id=bl%00&client_secret=x", "form"),
    ],
)
def test_token_endpoint_refuses_hostile_bodies_unauthenticated(
    vtn: Client, content: bytes, media: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    content_type = "application/x-www-form-urlencoded" if media == "form" else "application/json"
    resp = vtn.client.post("/auth/token", content=content, headers={"Content-Type": content_type})
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"] == "invalid_request"
    _no_tracebacks(caplog)


JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**120), max_value=10**120)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(alphabet=st.characters(codec="utf-8") | st.sampled_from(["\x00", "\ud800"]))
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=12,
)


EDGE_VALUES = st.sampled_from(
    [math.nan, math.inf, -math.inf, 1e308, -5e-324, 10**99, -(10**100), "\x00", "a\x00", "\ud800"]
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    value=st.one_of(EDGE_VALUES, JSON_SCALARS, JSON_VALUES),
    unknown=st.none() | st.tuples(JSON_VALUES),
)
def test_any_value_in_a_report_is_stored_as_strict_json_or_refused(
    vtn: Client, value: Any, unknown: tuple[Any] | None
) -> None:
    if not hasattr(vtn, "seeded"):
        vtn.seeded = _seed(vtn)  # type: ignore[attr-defined]
    try:
        text = json.dumps(value, allow_nan=True)
    except ValueError:  # lone surrogates cannot always be dumped: skip that example
        return
    extra = {} if unknown is None else {"extension": unknown[0]}
    body = report(vtn.seeded["public"]["id"], text, **extra)  # type: ignore[attr-defined]
    resp = vtn.send("POST", "ven-a", "/reports", body)
    assert resp.status_code in (201, 400), resp.text
    if resp.status_code == 201:
        stored = vtn.send("GET", "bl", f"/reports/{resp.json()['id']}")
        assert stored.status_code == 200
        document = strict_loads(stored.content)  # what the BL reads back is strict JSON
        assert "extension" not in document  # unknown: dropped, never stored
        values = document["resources"][0]["intervals"][0]["payloads"][0]["values"]
        assert values == [json.loads(text)]  # stored as sent, never silently changed


# --- unknown properties and wire names --------------------------------------------------------


def test_unknown_properties_are_dropped_logged_and_never_stored(
    vtn: Client, caplog: pytest.LogCaptureFixture
) -> None:
    seeded = _seed(vtn)
    body = json.loads(report(seeded["public"]["id"]))
    body["programID"] = seeded["program"]["id"]  # 3.0-era clients send it
    body["resources"][0]["intervals"][0]["quality"] = "good"
    body["resources"][0]["intervals"][0]["payloads"][0]["values"] = [{"x": 1.0, "y": 2.0, "z": 3}]
    with caplog.at_level(logging.INFO, logger="drready.openadr.vtn"):
        created = vtn.ok("POST", "ven-a", "/reports", body)
    lines = [r.getMessage() for r in caplog.records if "ignored unknown properties" in r.message]
    assert len(lines) == 1
    for name in ("programID", "resources.0.intervals.0.quality", f"{REPORT_VALUE}.z"):
        assert name in lines[0]
    stored = vtn.ok("GET", "bl", f"/reports/{created['id']}", status=200)
    assert "programID" not in stored
    interval = stored["resources"][0]["intervals"][0]
    assert "quality" not in interval and interval["payloads"][0]["values"] == [{"x": 1.0, "y": 2.0}]
    ven = vtn.ok(
        "POST", "ven-b", "/vens", {"objectType": "VEN_VEN_REQUEST", "venName": "b2", "x": 1}
    )
    assert "x" not in ven


def test_strict_input_refuses_unknown_properties(db_url: str) -> None:
    with TestClient(_app(db_url, strict_input=True), base_url="https://vtn.test") as client:
        vtn = Client(client)
        seeded = _seed(vtn)
        body = json.loads(report(seeded["public"]["id"]))
        body["programID"] = "x"
        detail = problem(vtn.send("POST", "ven-a", "/reports", body), 400)
        assert detail == "programID: Extra inputs are not permitted"
        ven = {"objectType": "VEN_VEN_REQUEST", "venName": "b2", "x": 1}
        assert problem(vtn.send("POST", "ven-b", "/vens", ven), 400) == (
            "x: Extra inputs are not permitted"
        )


def test_errors_name_wire_fields_never_pydantic_names(vtn: Client) -> None:
    missing = problem(vtn.send("POST", "ven-a", "/vens", {"venName": "v"}), 400)
    # the values come from the union (pydantic's own error names none: "one of " and nothing)
    assert missing == "objectType: required, one of 'BL_VEN_REQUEST', 'VEN_VEN_REQUEST'", missing
    wrong = problem(vtn.send("POST", "ven-a", "/vens", {"objectType": "VEN", "venName": "v"}), 400)
    assert wrong.startswith("objectType: must be one of"), wrong
    no_name = problem(vtn.send("POST", "ven-a", "/vens", {"objectType": "VEN_VEN_REQUEST"}), 400)
    assert no_name == "venName: Field required"
    seeded = _seed(vtn)
    nested = problem(
        vtn.send("POST", "ven-a", "/reports", report(seeded["public"]["id"], "[1]")), 400
    )
    for internal in ("bool", "int", "float", "str", "Point", "object_type"):
        assert f".{internal}:" not in nested and f".{internal}." not in nested, nested
    assert nested.startswith(f"{REPORT_VALUE}: "), nested
    descriptor = {
        "programName": "p2",
        "payloadDescriptors": [{"payloadType": "SIMPLE"}],
    }
    detail = problem(vtn.send("POST", "bl", "/programs", descriptor), 400)
    assert detail.startswith("payloadDescriptors.0.objectType: required"), detail


# --- visibility and existence oracles ---------------------------------------------------------


def test_a_ven_reports_only_on_events_it_can_see(both_paths: tuple[Client, Client]) -> None:
    fast, plain = both_paths
    seeded = _seed(fast)
    for vtn in (fast, plain):
        hidden = vtn.send("POST", "ven-a", "/reports", report(seeded["for_b"]["id"]))
        missing = vtn.send("POST", "ven-a", "/reports", report("no-such-event"))
        assert problem(hidden, 404) == f"eventID: no event with id {seeded['for_b']['id']!r}"
        assert problem(missing, 404) == "eventID: no event with id 'no-such-event'"
        assert hidden.json().keys() == missing.json().keys()
        vtn.ok("POST", "ven-a", "/reports", report(seeded["for_a"]["id"]))
        vtn.ok("POST", "ven-a", "/reports", report(seeded["public"]["id"]))
    own = fast.ok("POST", "ven-b", "/reports", report(seeded["for_b"]["id"]))
    # and may not move a report onto an event it cannot see by PUT
    mine = fast.ok("POST", "ven-a", "/reports", report(seeded["for_a"]["id"]))
    moved = fast.send("PUT", "ven-a", f"/reports/{mine['id']}", report(seeded["for_b"]["id"]))
    assert problem(moved, 404) == f"eventID: no event with id {seeded['for_b']['id']!r}"
    listed = fast.ok("GET", "bl", "/reports", status=200)
    on_b = [r for r in listed if r["eventID"] == seeded["for_b"]["id"]]
    assert [r["id"] for r in on_b] == [own["id"]]


def test_a_ven_reads_by_id_the_events_targeted_at_it(vtn: Client) -> None:
    seeded = _seed(vtn)
    got = vtn.ok("GET", "ven-a", f"/events/{seeded['for_a']['id']}", status=200)
    assert got["targets"] == ["unit-a"]  # "other" is not ven-a's: hidden
    hidden = vtn.send("GET", "ven-a", f"/events/{seeded['for_b']['id']}")
    missing = vtn.send("GET", "ven-a", "/events/no-such-event")
    assert problem(hidden, 404) == f"no event with id {seeded['for_b']['id']!r}"
    assert problem(missing, 404) == "no event with id 'no-such-event'"
    assert vtn.ok("GET", "ven-b", f"/events/{seeded['for_b']['id']}", status=200)


def test_names_held_by_another_ven_answer_as_ones_own_duplicates(vtn: Client) -> None:
    seeded = _seed(vtn)
    own_ven = vtn.ok("POST", "ven-b", "/vens", {"objectType": "VEN_VEN_REQUEST", "venName": "b-2"})
    dup = {"objectType": "VEN_VEN_REQUEST", "venName": "b-2"}
    squat = {"objectType": "VEN_VEN_REQUEST", "venName": "gateway-a"}
    b_own = vtn.send("POST", "ven-b", "/vens", dup)
    b_squat = vtn.send("POST", "ven-b", "/vens", squat)
    assert problem(b_own, 409) == "venName 'b-2' exists already"
    assert problem(b_squat, 409) == "venName 'gateway-a' exists already"
    # resources: one name space across VENs (the profile names them by DeviceId)
    resource = {
        "objectType": "VEN_RESOURCE_REQUEST",
        "resourceName": "000005:HW-B",
        "venID": own_ven["id"],
    }
    vtn.ok("POST", "ven-b", "/resources", resource)
    b_res_own = vtn.send("POST", "ven-b", "/resources", resource)
    b_res_squat = vtn.send(
        "POST", "ven-b", "/resources", {**resource, "resourceName": "000005:HW-A"}
    )
    assert problem(b_res_own, 409) == "resourceName '000005:HW-B' exists already"
    assert problem(b_res_squat, 409) == "resourceName '000005:HW-A' exists already"
    # and neither answer names the holder
    for resp in (b_squat, b_res_squat):
        assert seeded["ven_a"]["id"] not in resp.text and "ven-a" not in resp.text
    # another VEN's ven id answers as a missing one
    other = vtn.send("POST", "ven-b", "/resources", {**resource, "venID": seeded["ven_a"]["id"]})
    gone = vtn.send("POST", "ven-b", "/resources", {**resource, "venID": "no-such-ven"})
    assert problem(other, 404) == f"venID: no ven with id {seeded['ven_a']['id']!r}"
    assert problem(gone, 404) == "venID: no ven with id 'no-such-ven'"


def test_subscriptions_to_invisible_programs_answer_as_missing(vtn: Client) -> None:
    _seed(vtn)
    secret = vtn.ok("POST", "bl", "/programs", {"programName": "b-only", "targets": ["group-b"]})
    body = {
        "clientName": "gateway-a",
        "objectOperations": [
            {"objects": ["EVENT"], "operations": ["CREATE"], "callbackUrl": "https://a.example/cb"}
        ],
    }
    hidden = vtn.send("POST", "ven-a", "/subscriptions", {**body, "programID": secret["id"]})
    missing = vtn.send("POST", "ven-a", "/subscriptions", {**body, "programID": "no-such-program"})
    assert problem(hidden, 409) == f"programID: no program with id {secret['id']!r}"
    assert problem(missing, 409) == "programID: no program with id 'no-such-program'"
    vtn.ok("POST", "ven-b", "/subscriptions", {**body, "programID": secret["id"]})


# --- file modes -------------------------------------------------------------------------------


def test_sqlite_files_are_0600_and_directories_0700(tmp_path: Path) -> None:
    old = os.umask(0o022)  # a usual umask: what a library would create 0644 / 0755
    try:
        database = tmp_path / "state" / "vtn" / "vtn.db"
        with TestClient(_app(f"sqlite:///{database}"), base_url="https://vtn.test") as client:
            vtn = Client(client)
            seeded = _seed(vtn)
            vtn.ok("POST", "ven-a", "/reports", report(seeded["public"]["id"]))
            made = [p for p in database.parent.iterdir()]
            assert {p.name for p in made} >= {"vtn.db", "vtn.db-wal", "vtn.db-shm"}
            for path in made:
                assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        for directory in (tmp_path / "state", tmp_path / "state" / "vtn"):
            assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory
    finally:
        os.umask(old)
