"""The servicer's north-bound API in process, on SQLite and PostgreSQL (issue 11 item 2): tokens
and scopes, idempotent orders, strict input (400 naming the field, never 5xx), the portfolio's
potential, meter readings, settlements as JSON and CSV, health, metrics, the OpenAPI document.

The app is the one ``drready servicer run`` serves (:func:`drready.servicer.web.app.create_app`)
on a real store; its BL client points nowhere — the API never calls the VTN."""

from __future__ import annotations

import csv
import io
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from drready.cloud.fleet import MakerFleet
from drready.domain import DEFAULT_TZ, FlexibilityEnvelope
from drready.domain.time import zone
from drready.security.tokens import ClientRegistry, TokenService
from drready.servicer.bl import BlClient
from drready.servicer.metrics import ServicerMetrics
from drready.servicer.service import Servicer
from drready.servicer.settling import settle_due
from drready.servicer.storage.db import ResourceKind
from drready.servicer.storage.potentials import PotentialInput
from drready.servicer.storage.store import ServicerStore
from drready.servicer.web.app import ServiceState, create_app
from drready.servicer.web.auth import AUDIENCE, SERVICER_POLICY

TZ = zone(DEFAULT_TZ)
NOW = datetime(2026, 5, 14, 8, 0, tzinfo=TZ)  # a Thursday
W_START = datetime(2026, 5, 14, 10, 0, tzinfo=TZ)
W_END = datetime(2026, 5, 14, 12, 0, tzinfo=TZ)
SECRETS = {c: secrets.token_urlsafe(24) for c in ("desk", "meter-provider", "auditor", "desk-2")}


class FakeClock:
    scale = 1.0

    def __init__(self, now: datetime) -> None:
        self.t = now

    def now(self) -> datetime:
        return self.t


@dataclass
class Api:
    http: TestClient
    store: ServicerStore
    clock: FakeClock
    key: str
    names: list[str]
    tokens: dict[str, str] = field(default_factory=dict)

    def token(self, client_id: str, scope: str | None = None) -> str:
        form = {
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": SECRETS[client_id],
        }
        if scope is not None:
            form["scope"] = scope
        answer = self.http.post("/auth/token", data=form)
        assert answer.status_code == 200, answer.text
        return str(answer.json()["access_token"])

    def auth(self, client_id: str) -> dict[str, str]:
        if client_id not in self.tokens:  # a scrypt run per token: fetch each once
            self.tokens[client_id] = self.token(client_id)
        return {"Authorization": f"Bearer {self.tokens[client_id]}"}


@cache
def _fleet() -> tuple[list[str], list[FlexibilityEnvelope]]:
    fleet = MakerFleet.random(3, NOW.date(), seed=3)
    return [str(d) for d in fleet.device_ids], fleet.envelopes(W_START, W_END)


@pytest.fixture
def api(db_url: str) -> Iterator[Api]:
    store = ServicerStore.open(db_url)
    registry = store.registry()
    registry.upsert_ven(ven_id="v-cloud", ven_name="maker-cloud", route="cloud", client_id="mc")
    registry.upsert_ven(ven_id="v-home", ven_name="home-gw", route="gateway", client_id="hg")
    names, envelopes = _fleet()
    for k, name in enumerate(names):
        registry.upsert_resource(
            resource_id=f"r{k}",
            ven_id="v-home" if k == 0 else "v-cloud",
            resource_name=name,
            kind=ResourceKind.UNIT,
            rated_power_kw=1.2,
        )
    key = secrets.token_urlsafe(48)
    clients = ClientRegistry(signing_key=key, policy=SERVICER_POLICY)
    clients.add_client("desk", SECRETS["desk"], role="trader")
    clients.add_client("desk-2", SECRETS["desk-2"], role="trader")
    clients.add_client("meter-provider", SECRETS["meter-provider"], role="meter")
    clients.add_client("auditor", SECRETS["auditor"], role="viewer")
    clock = FakeClock(NOW)
    tokens = clients.token_service("https://servicer.test", audience=AUDIENCE)
    bl = BlClient("https://vtn.invalid", "dr-servicer", "never-used-secret", verify=True)
    servicer = Servicer(bl, store, clock=clock.now)
    app = create_app(
        store=store,
        servicer=servicer,
        clock=clock,
        registry=clients,
        tokens=tokens,
        base_url="https://servicer.test",
        metrics=ServicerMetrics(store, now=clock.now),
        state=ServiceState(),
    )
    store.record_potential_request(
        request_id="pot-1", window_start=W_START, window_end=W_END, requested_at=NOW
    )
    store.record_potentials(
        request_id="pot-1",
        potentials=[
            PotentialInput(f"r{k}", e.up_kwh, e.down_kwh, e.confidence, e.model_dump(mode="json"))
            for k, e in enumerate(envelopes[:2])  # r2 does not answer
        ],
        report_id="rep-1",
        received_at=NOW,
    )
    with TestClient(app, base_url="https://servicer.test") as http:
        yield Api(http, store, clock, key, names)
    store.close()


def order_body(**changes: object) -> dict[str, object]:
    body: dict[str, object] = {
        "direction": "up",
        "window": {"start": W_START.isoformat(), "end": W_END.isoformat()},
        "energy_kwh": 3.0,
    }
    body.update(changes)
    return body


# ------------------------------------------------------------------------------ auth
def test_tokens_and_scopes(api: Api) -> None:
    http = api.http
    assert http.get("/auth/server").json()["tokenURL"] == "https://servicer.test/auth/token"
    assert http.get("/api/v1/orders").status_code == 401  # no token
    bad = http.get("/api/v1/orders", headers={"Authorization": "Bearer not-a-token"})
    assert bad.status_code == 401
    meter = api.auth("meter-provider")
    refused = http.post("/api/v1/orders", json=order_body(), headers=meter)
    assert refused.status_code == 403 and "orders:write" in refused.json()["detail"]
    viewer = api.auth("auditor")
    assert http.get("/api/v1/orders", headers=viewer).status_code == 200
    assert http.post("/api/v1/orders", json=order_body(), headers=viewer).status_code == 403
    reading = http.post("/api/v1/meter-readings", json={"series": []}, headers=viewer)
    assert reading.status_code == 403
    # a narrower token than the client's scopes
    narrow = api.token("desk", scope="orders:read")
    only_read = {"Authorization": f"Bearer {narrow}"}
    assert http.get("/api/v1/orders", headers=only_read).status_code == 200
    assert http.post("/api/v1/orders", json=order_body(), headers=only_read).status_code == 403
    # OpenADR scopes are not this API's, and a VTN token signed with the same key is refused
    form = {"grant_type": "client_credentials", "client_id": "desk"}
    form |= {"client_secret": SECRETS["desk"], "scope": "read_all"}
    assert http.post("/auth/token", data=form).status_code == 400
    vtn_token, _ = TokenService("https://servicer.test", api.key).issue(
        "desk", ["read_all"], role="bl"
    )
    vtn = {"Authorization": f"Bearer {vtn_token}"}
    assert http.get("/api/v1/orders", headers=vtn).status_code == 401
    wrong = form | {"client_secret": "wrong-secret-0123456789"}
    assert http.post("/auth/token", data=wrong).status_code == 401


# ------------------------------------------------------------------------------ orders
def test_orders_are_idempotent_per_client_and_key(api: Api) -> None:
    http, desk = api.http, api.auth("desk")
    first = http.post("/api/v1/orders", json=order_body(), headers={**desk, "Idempotency-Key": "a"})
    assert first.status_code == 201, first.text
    order = first.json()
    assert order["status"] == "requested" and order["target_kwh"] == 3.0
    assert first.headers["location"] == f"/api/v1/orders/{order['id']}"
    # the same order written differently (another offset, other key order): the same body
    same = {
        "energy_kwh": 3,
        "window": {"end": "2026-05-14T03:00:00+00:00", "start": "2026-05-14T01:00:00Z"},
        "direction": "up",
    }
    again = http.post("/api/v1/orders", json=same, headers={**desk, "Idempotency-Key": "a"})
    assert again.status_code == 200 and again.json()["id"] == order["id"]
    other = http.post(
        "/api/v1/orders", json=order_body(energy_kwh=4.0), headers={**desk, "Idempotency-Key": "a"}
    )
    assert other.status_code == 409 and "different body" in other.json()["detail"]
    # another client's key space is its own
    desk2 = api.auth("desk-2")
    theirs = http.post(
        "/api/v1/orders", json=order_body(), headers={**desk2, "Idempotency-Key": "a"}
    )
    assert theirs.status_code == 201 and theirs.json()["id"] != order["id"]
    # no key: a new order each time
    assert http.post("/api/v1/orders", json=order_body(), headers=desk).status_code == 201
    listed = http.get("/api/v1/orders", headers=desk).json()["orders"]
    assert len(listed) == 3
    assert (
        len(
            http.get("/api/v1/orders?status=requested&date=2026-05-14", headers=desk).json()[
                "orders"
            ]
        )
        == 3
    )
    assert http.get("/api/v1/orders?date=2026-05-15", headers=desk).json()["orders"] == []
    got = http.get(f"/api/v1/orders/{order['id']}", headers=desk)
    assert got.status_code == 200
    detail = got.json()
    assert detail["figures"]["routes"][0]["route"] == "gateway"
    assert detail["figures"]["target_kwh"] == 3.0 and detail["settled_kwh"] is None
    assert http.get("/api/v1/orders/nope", headers=desk).status_code == 404


W = {"start": W_START.isoformat(), "end": W_END.isoformat()}
#: (body changes, what the 400's detail must say)
BAD_ORDERS: list[tuple[dict[str, object], str]] = [
    ({"colour": "green"}, "colour: unknown field"),
    ({"direction": "sideways"}, "direction: "),
    ({"energy_kwh": -1.0}, "energy_kwh: must be finite and > 0, got -1.0 (allowed range: (0, "),
    ({"energy_kwh": 2e6}, "energy_kwh: must be <= 1000000"),
    ({"energy_kwh": "3"}, "energy_kwh: "),
    ({"energy_kwh": None}, "energy_kwh, power_kw: give exactly one"),
    ({"power_kw": [1.0, 1.0, 1.0, 1.0]}, "energy_kwh, power_kw: give exactly one"),
    ({"energy_kwh": None, "power_kw": [1.0]}, "power_kw: must have one value per 30-minute slot"),
    ({"energy_kwh": None, "power_kw": [1, 2, -3, 4]}, "power_kw[2]: must be finite and >= 0"),
    ({"energy_kwh": None, "power_kw": [0, 0, 0, 0]}, "power_kw: must have at least one value > 0"),
    ({"window": {**W, "start": "2026-05-14T10:15:00+09:00"}}, "window.start: must be on a 30"),
    ({"window": {**W, "start": "2026-05-14T10:00:00"}}, "window.start: "),
    ({"window": {**W, "start": 1778720400}}, "window.start: must be an RFC 3339"),
    ({"window": {"start": W["start"]}}, "window.end: required"),
    ({"window": {**W, "end": "2026-05-14T09:00:00+09:00"}}, "window.end: must be after"),
    ({"window": {**W, "end": "2026-05-15T01:00:00+09:00"}}, "window.end: must be at most"),
    (
        {"window": {"start": "2026-05-14T07:00:00+09:00", "end": "2026-05-14T08:00:00+09:00"}},
        "window.start: must be in the future",
    ),
    (
        {"window": {"start": "2026-05-22T10:00:00+09:00", "end": "2026-05-22T11:00:00+09:00"}},
        "window.start: must be within 7 days",
    ),
    ({"deadline": "2026-05-14T10:30:00+09:00"}, "deadline: must be after now"),
    ({"deadline": "2026-05-14T07:30:00+09:00"}, "deadline: must be after now"),
]


def test_bad_orders_answer_400_naming_the_field(api: Api) -> None:
    desk = api.auth("desk")
    for changes, message in BAD_ORDERS:
        answer = api.http.post("/api/v1/orders", json=order_body(**changes), headers=desk)
        assert answer.status_code == 400, (message, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert message in answer.json()["detail"], (message, answer.json()["detail"])
    assert api.store.list_orders() == []  # nothing stored


T13 = "2026-05-14T13:00:00+09:00"
#: Orders by heating start time alone (issue 17) that are wrong: (body, what the 400 must say).
BAD_START_TIME_ORDERS: list[tuple[dict[str, object], str]] = [
    ({"kind": "start_time"}, "start: required with kind 'start_time'"),
    ({"kind": "start_time", "start": T13, "energy_kwh": 2.0}, "energy_kwh: not with kind"),
    ({"kind": "start_time", "start": T13, "power_kw": [1.0] * 8}, "power_kw: not with kind"),
    ({"kind": "start_time", "start": T13, "window": W}, "window: not with kind 'start_time'"),
    ({"kind": "start_time", "start": T13, "direction": "down"}, "direction: must be 'up'"),
    ({"kind": "start_time", "start": "2026-05-14T13:10:00+09:00"}, "start: must be on a 30"),
    ({"kind": "start_time", "start": "2026-05-14T13:00:00"}, "start: "),
    # 20:30 + 4 h runs past the local midnight (settlement is per local day)
    (
        {"kind": "start_time", "start": "2026-05-14T20:30:00+09:00"},
        "start: must be at most 2026-05-14T20:00:00+09:00",
    ),
    ({"kind": "start_time", "start": "2026-05-14T07:00:00+09:00"}, "start: must be in the future"),
    ({"kind": "start_time", "start": "2026-05-22T13:00:00+09:00"}, "start: must be within 7 days"),
    ({"kind": "hourly", "start": T13}, "kind: "),
    ({**order_body(), "start": T13}, "start: only with kind 'start_time'"),
    ({"window": W, "energy_kwh": 3.0}, "direction: required"),
    ({"direction": "up", "energy_kwh": 3.0}, "window: required"),
]


def test_an_order_by_start_time_alone_is_up_dr_for_four_hours_without_amount(api: Api) -> None:
    """The window is the start and 4 h (as ECHONET Lite's 0xCA), the direction up, the target 0
    (nothing asked: the units heat what their plans allow); the same order however written is
    one order under its idempotency key, and an amount order of the same window is another."""
    http, desk = api.http, api.auth("desk")
    key = {**desk, "Idempotency-Key": "st"}
    first = http.post("/api/v1/orders", json={"kind": "start_time", "start": T13}, headers=key)
    assert first.status_code == 201, first.text
    order = first.json()
    assert order["kind"] == "start_time" and order["direction"] == "up"
    start, end = (datetime.fromisoformat(order["window"][k]) for k in ("start", "end"))
    assert start == datetime(2026, 5, 14, 13, 0, tzinfo=TZ)
    assert end - start == timedelta(hours=4)
    assert order["energy_kwh"] is None and order["power_kw"] is None
    assert order["target_kwh"] == 0.0
    same = {"start": "2026-05-14T04:00:00Z", "direction": "up", "kind": "start_time"}
    again = http.post("/api/v1/orders", json=same, headers=key)
    assert again.status_code == 200 and again.json()["id"] == order["id"]
    amount = {"direction": "up", "window": {"start": T13, "end": "2026-05-14T17:00:00+09:00"}}
    other = http.post("/api/v1/orders", json={**amount, "energy_kwh": 1.0}, headers=key)
    assert other.status_code == 409
    stored = api.store.order(order["id"])
    assert stored is not None and stored.kind == "start_time" and stored.target_kwh == 0.0
    # an amount order keeps its kind and its hash (the same key, the same body: the same order)
    plain = http.post("/api/v1/orders", json=order_body(), headers={**desk, "Idempotency-Key": "p"})
    assert plain.status_code == 201 and plain.json()["kind"] == "amount"
    explicit = http.post(
        "/api/v1/orders", json=order_body(kind="amount"), headers={**desk, "Idempotency-Key": "p"}
    )
    assert explicit.status_code == 200 and explicit.json()["id"] == plain.json()["id"]
    detail = http.get(f"/api/v1/orders/{order['id']}", headers=desk).json()
    assert detail["figures"]["target_kwh"] == 0.0 and detail["figures"]["shortfall_kwh"] == 0.0


def test_bad_start_time_orders_answer_400_naming_the_field(api: Api) -> None:
    desk = api.auth("desk")
    for body, message in BAD_START_TIME_ORDERS:
        answer = api.http.post("/api/v1/orders", json=body, headers=desk)
        assert answer.status_code == 400, (message, answer.text)
        assert message in answer.json()["detail"], (message, answer.json()["detail"])
    assert api.store.list_orders() == []


def test_other_bad_input_answers_400_not_5xx(api: Api) -> None:
    http, desk = api.http, api.auth("desk")
    cases = [
        (
            http.post(
                "/api/v1/orders",
                content=b"{nope",
                headers={**desk, "content-type": "application/json"},
            ),
            "not valid JSON",
        ),
        (http.post("/api/v1/orders", json=[1, 2], headers=desk), "body: "),
        (http.post("/api/v1/orders?x=1", json=order_body(), headers=desk), "query.x: unknown"),
        (
            http.post(
                "/api/v1/orders", json=order_body(), headers={**desk, "Idempotency-Key": "k" * 129}
            ),
            "Idempotency-Key: must be 1–128",
        ),
        (http.get("/api/v1/orders?status=lost", headers=desk), "status: must be one of requested"),
        (http.get("/api/v1/orders?date=14/05/2026", headers=desk), "date: must be a date"),
        (http.get("/api/v1/orders?limit=0", headers=desk), "limit: "),
        (http.get("/api/v1/orders/x?detail=all", headers=desk), "detail: "),
        (http.get("/api/v1/portfolio/potential?start=10&end=x", headers=desk), "start: must be"),
        (
            http.get(
                f"/api/v1/portfolio/potential?start={W_START.isoformat().replace('+', '%2B')}"
                "&end=2026-05-14T12:00:00",
                headers=desk,
            ),
            "end: must carry a UTC offset",
        ),
        (http.get("/api/v1/settlements/yesterday", headers=desk), "date: must be a date"),
        (http.get("/api/v1/settlements/2026-05-14?format=xml", headers=desk), "format: must be"),
    ]
    for answer, message in cases:
        assert answer.status_code == 400, (message, answer.status_code, answer.text)
        assert message in answer.json()["detail"], (message, answer.json()["detail"])


# ------------------------------------------------------------------------------ portfolio
def _q(t: datetime) -> str:
    return t.isoformat().replace("+", "%2B")


def test_portfolio_potential_per_route_with_who_did_not_answer(api: Api) -> None:
    http, desk = api.http, api.auth("auditor")
    later = W_END + timedelta(hours=2)
    missing = http.get(
        f"/api/v1/portfolio/potential?start={_q(W_END)}&end={_q(later)}", headers=desk
    )
    assert missing.status_code == 404 and "no potential collected" in missing.json()["detail"]
    got = http.get(f"/api/v1/portfolio/potential?start={_q(W_START)}&end={_q(W_END)}", headers=desk)
    assert got.status_code == 200, got.text
    body = got.json()
    pot = body["potential"]
    assert body["request_id"] == "pot-1"
    assert (pot["n_asked"], pot["n_answered"]) == (3, 2)
    assert [m["resource_name"] for m in pot["missing"]] == [api.names[2]]
    routes = {r["route"]: r for r in pot["routes"]}
    assert routes["gateway"]["n_answered"] == 1 and routes["cloud"]["n_answered"] == 1
    assert pot["up_kwh"] == pytest.approx(routes["gateway"]["up_kwh"] + routes["cloud"]["up_kwh"])


# ------------------------------------------------------------------------------ meter
def series(name: str, start: datetime, values: list[float]) -> dict[str, object]:
    return {"resource": name, "start": start.isoformat(), "energy_kwh": values}


def test_meter_readings_are_checked_and_upserted(api: Api) -> None:
    http, meter = api.http, api.auth("meter-provider")
    day_before = NOW - timedelta(days=1)
    body = {"series": [series(api.names[0], day_before, [0.25] * 48)]}
    first = http.post("/api/v1/meter-readings", json=body, headers=meter)
    assert first.status_code == 200, first.text
    assert first.json() == {"received": 48, "written": 48}
    again = http.post("/api/v1/meter-readings", json=body, headers=meter)
    assert again.json() == {"received": 48, "written": 0}  # the same values: nothing changed
    stored = api.store.meter_slots(
        resource_ids=["r0"], start=day_before, end=day_before + timedelta(days=1)
    )
    assert stored.energy_kwh.tolist() == [[0.25] * 48]
    bad = [
        ({"series": [series("nobody", day_before, [0.1])]}, "series[0].resource: unknown"),
        ({"series": [series(api.names[0], NOW, [0.1])]}, "series[0].energy_kwh: the last slot"),
        (
            {"series": [series(api.names[0], NOW - timedelta(days=40), [0.1])]},
            "series[0].start: must be within the last 31 days",
        ),
        (
            {"series": [series(api.names[0], day_before + timedelta(minutes=10), [0.1])]},
            "series[0].start: must be on a 30-minute boundary",
        ),
        ({"series": [series(api.names[0], day_before, [0.1, -0.1])]}, "energy_kwh[1]: must be"),
        (
            {
                "series": [
                    series(api.names[1], day_before, [0.1, 0.1]),
                    series(api.names[1], day_before, [0.1]),
                ]
            },
            "series[1].energy_kwh[0]: slot",
        ),
        ({"series": [series(api.names[0], day_before, [])]}, "series[0].energy_kwh: "),
        (
            {"series": [{**series(api.names[0], day_before, [0.1]), "unit": "Wh"}]},
            "series[0].unit: unknown field",
        ),
        ({}, "series: required"),
    ]
    for payload, message in bad:
        answer = http.post("/api/v1/meter-readings", json=payload, headers=meter)
        assert answer.status_code == 400, (message, answer.text)
        assert message in answer.json()["detail"], (message, answer.json()["detail"])
    for literal in (b"NaN", b"Infinity", b"-Infinity"):  # JSON extensions Python would parse
        raw = (
            b'{"series": [{"resource": "'
            + api.names[0].encode()
            + b'", "start": "'
            + day_before.isoformat().encode()
            + b'", "energy_kwh": [0.1, '
            + literal
            + b"]}]}"
        )
        answer = http.post(
            "/api/v1/meter-readings",
            content=raw,
            headers={**meter, "content-type": "application/json"},
        )
        assert answer.status_code == 400, answer.text
        assert "series[0].energy_kwh[1]: must be finite" in answer.json()["detail"]


# ------------------------------------------------------------------------------ settlements
def test_settlements_json_and_csv(api: Api) -> None:
    http = api.http
    desk = api.auth("auditor")
    assert http.get("/api/v1/settlements/2026-05-14", headers=desk).status_code == 404
    # a closed dispatch: r0 accepted 1.0 of 1.5, r1 rejected its 1.5
    store = api.store
    dispatch_id = store.create_dispatch(
        label="d",
        direction="up",
        window_start=W_START,
        window_end=W_END,
        target_kind="energy",
        target={"energy_kwh": 3.0},
        assignments=[("r0", 1.5), ("r1", 1.5)],
        created_at=NOW,
    )
    record = store.get_dispatch(dispatch_id)
    assert record is not None
    for a, status, kwh in zip(record.assignments, ("partial", "rejected"), (1.0, 0.0), strict=True):
        store.mark_assignment_sent(assignment_id=a.id, event_id=f"ev-{a.id}", sent_at=NOW)
        store.record_response(
            event_id=f"ev-{a.id}",
            status=status,
            accepted_kwh=kwh,
            report_id=f"rep-{a.id}",
            responded_at=NOW,
        )
    store.close_dispatch(dispatch_id=dispatch_id)
    day0 = datetime(2026, 4, 24, tzinfo=TZ)
    meter = {"series": [series(n, day0, [0.3] * (20 * 48 + 24)) for n in api.names[:2]]}
    api.clock.t = datetime(2026, 5, 14, 12, 0, tzinfo=TZ)
    assert (
        http.post(
            "/api/v1/meter-readings", json=meter, headers=api.auth("meter-provider")
        ).status_code
        == 200
    )
    settled = settle_due(store, store.registry().list_resources(), now=api.clock.t)
    assert settled == [dispatch_id]
    got = http.get("/api/v1/settlements/2026-05-14", headers=desk)
    assert got.status_code == 200, got.text
    (event,) = got.json()["events"]
    assert [r["resource_name"] for r in event["resources"]] == [api.names[0]]  # not the refuser
    assert event["resources"][0]["requested_kwh"] == 1.5
    assert event["resources"][0]["accepted_kwh"] == 1.0
    as_csv = http.get("/api/v1/settlements/2026-05-14", headers={**desk, "Accept": "text/csv"})
    assert as_csv.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert {r["resource_id"] for r in rows if r["level"] == "resource"} == {api.names[0]}
    assert sum(float(r["requested_kwh"]) for r in rows if r["level"] == "resource") == 1.5
    assert sum(float(r["accepted_kwh"]) for r in rows if r["level"] == "resource") == 1.0
    same = http.get("/api/v1/settlements/2026-05-14?format=csv", headers=desk)
    assert same.text == as_csv.text


# ------------------------------------------------------------------------------ operations
def test_health_metrics_docs(api: Api) -> None:
    http = api.http
    health = http.get("/healthz")
    assert health.status_code == 200
    assert health.json()["database"] == "ok" and health.json()["vtn"]["last_success_at"] is None
    http.post("/api/v1/orders", json=order_body(), headers=api.auth("desk"))
    text = http.get("/metrics").text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    orders = {s.labels["status"]: s.value for s in families["drready_servicer_orders"].samples}
    assert orders["requested"] == 1 and orders["delivered"] == 0
    resources = families["drready_servicer_resources"].samples
    assert sum(s.value for s in resources if s.labels["state"] == "active") == 3
    assert families["drready_servicer_silent_resources"].samples[0].value == 0
    assert "drready_servicer_vtn_request_duration_seconds" in families
    doc = http.get("/openapi.json").json()
    assert {
        "/api/v1/orders",
        "/api/v1/orders/{order_id}",
        "/api/v1/portfolio/potential",
        "/api/v1/settlements/{day}",
        "/api/v1/meter-readings",
        "/auth/token",
    } <= set(doc["paths"])
    assert "OrderCreate" in doc["components"]["schemas"]
    assert http.get("/docs").status_code == 200
    # the dashboard is behind the operators' login (tests/test_servicer_login.py)
    assert http.get("/dashboard/api/dashboard", follow_redirects=False).status_code == 401
    assert http.get("/", follow_redirects=False).headers["location"] == "/dashboard/"
