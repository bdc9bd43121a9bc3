"""The VTN's load work (issue 4; C1, S1): the fast paths of ``GET /events`` and ``POST /reports``
answer byte for byte what FastAPI's routes answer, the reports' group commit stores each report
once with its event's program (or refuses it alone), background WAL checkpoints move commits
into the database file, and the fast path's query parsing accepts only plain valid forms."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from drready.openadr.vtn import VtnSettings, create_app
from drready.openadr.vtn.app import make_engine
from drready.openadr.vtn.checkpoint import WalCheckpointer
from drready.openadr.vtn.fastpath import FastPaths, parse_event_query
from drready.openadr.vtn.store import (
    Filters,
    RawStore,
    create_all,
    create_object,
    granted_among,
    list_wire,
    targets_of_vens,
    wire_json,
)
from drready.security.tokens import ClientRegistry
from tests.test_vtn_api import SECRETS, database_url, fetch_token, registry  # noqa: F401

EVENT_TARGETS: list[list[str] | None] = [None, ["unit-1"], ["unit-1", "unit-2"], ["unit-2"], []]


def _without_fast_paths(app: FastAPI) -> FastAPI:
    """The same app (same state, database, token cache) with FastAPI routing every request."""
    app.user_middleware = [m for m in app.user_middleware if m.cls is not FastPaths]
    app.middleware_stack = None
    return app


def _seed(client: TestClient, bl: dict[str, str]) -> list[str]:
    program = client.post("/programs", json={"programName": "p"}, headers=bl).json()
    ven = {
        "objectType": "BL_VEN_REQUEST",
        "clientID": "ven-a",
        "venName": "gateway-a",
        "targets": ["unit-1"],
    }
    assert client.post("/vens", json=ven, headers=bl).status_code == 201
    ids = []
    for i, targets in enumerate(EVENT_TARGETS):
        event: dict[str, Any] = {
            "programID": program["id"],
            "eventName": f"夕方ピーク {i}",  # non-ASCII: stored and answered as UTF-8
            "intervalPeriod": {"start": f"2030-01-15T1{i}:00:00+09:00", "duration": "PT30M"},
            "intervals": [{"id": 0, "payloads": [{"type": "SIMPLE", "values": [0.1, 1e-7, 3]}]}],
        }
        if targets is not None:
            event["targets"] = targets
        resp = client.post("/events", json=event, headers=bl)
        assert resp.status_code == 201, resp.text
        ids.append(resp.json()["id"])
    return ids


@pytest.fixture
def apps(database_url: str, registry: ClientRegistry) -> Iterator[tuple[TestClient, TestClient]]:  # noqa: F811
    """Two VTNs on one database: with fast paths, and with FastAPI routing only."""
    settings = VtnSettings(database_url=database_url, base_url="https://vtn.test")
    fast = create_app(settings, registry, settings.token_service(registry))
    plain = _without_fast_paths(create_app(settings, registry, settings.token_service(registry)))
    with (
        TestClient(fast, base_url="https://vtn.test") as a,
        TestClient(plain, base_url="https://vtn.test") as b,
    ):
        yield a, b


def test_fast_paths_answer_byte_for_byte_as_the_routes(
    apps: tuple[TestClient, TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    fast, plain = apps
    answered: list[bool] = []
    original = FastPaths._search_events

    async def counting(self: FastPaths, *args: Any) -> bool:
        answered.append(await original(self, *args))
        return answered[-1]

    monkeypatch.setattr(FastPaths, "_search_events", counting)
    tokens = {who: {"Authorization": f"Bearer {fetch_token(fast, who)}"} for who in SECRETS}
    event_ids = _seed(fast, tokens["bl"])
    queries: list[dict[str, Any] | None] = [
        None,
        {"targets": "unit-1"},
        {"targets": ["unit-1", "unit-2"]},  # unit-2 not granted to ven-a: hidden
        {"targets": "unit-2"},
        {"limit": "2", "skip": "1"},
        {"active": "true"},
        {"active": "false", "targets": "unit-1"},
        {"limit": "51"},  # FastAPI's 400
        {"skip": "-1"},
        {"active": "yes"},  # FastAPI's lenient bool
        {"targets": ""},
        {"programID": "not an id"},
        {"unknown": "x"},
    ]
    pairs: list[tuple[httpx.Response, httpx.Response]] = []
    for headers in (tokens["bl"], tokens["ven-a"], tokens["ven-b"], {}):
        for params in queries:
            a, b = (c.get("/events", params=params, headers=headers) for c in (fast, plain))
            pairs.append((a, b))
    report = {
        "eventID": event_ids[1],
        "clientName": "gateway-a",
        "resources": [
            {
                "resourceName": "heater-1",
                "intervals": [{"id": 0, "payloads": [{"type": "USAGE", "values": [0.4]}]}],
            }
        ],
    }
    bodies: list[bytes] = [
        b"{not json",
        b"[1, 2]",
        json.dumps({**report, "eventID": "no-such-event"}).encode(),
        json.dumps({**report, "clientName": 5}).encode(),
        json.dumps({**report, "resources": None}).encode(),
        json.dumps({**report, "eventID": event_ids[3]}).encode(),  # unit-2: not ven-a's
        json.dumps(report).replace("0.4", "NaN").encode(),
        json.dumps(report).replace("0.4", "1e400").encode(),
        json.dumps(report).replace("0.4", "9" * 5000).encode(),
        json.dumps(report).replace("0.4", "[" * 2000 + "]" * 2000).encode(),
        json.dumps({**report, "clientName": "gate\u0000way"}).encode(),
        json.dumps({**report, "programID": "x", "clientName": 5}).encode(),  # unknown + bad
    ]
    for headers in (tokens["ven-a"], tokens["bl"]):  # BL lacks write_reports: 403
        for content in bodies:
            h = {**headers, "Content-Type": "application/json"}
            a, b = (c.post("/reports", content=content, headers=h) for c in (fast, plain))
            pairs.append((a, b))
    for a, b in pairs:
        assert (a.status_code, a.headers["content-type"], a.content) == (
            b.status_code,
            b.headers["content-type"],
            b.content,
        ), a.request.url
    statuses = {a.status_code for a, _ in pairs}
    assert {200, 400, 401, 403, 404} <= statuses
    assert 500 not in statuses
    assert answered.count(True) >= 20 and answered.count(False) >= 10  # both paths ran
    # a created report: same answer apart from what the VTN provisions, stored as answered
    created = [
        c.post("/reports", json=report, headers=tokens["ven-a"]).json() for c in (fast, plain)
    ]
    for key in ("id", "createdDateTime", "modificationDateTime"):
        assert created[0].pop(key) != created[1].pop(key)
    assert created[0] == created[1]
    listed = fast.get("/reports", headers=tokens["ven-a"])
    assert len(listed.json()) == 2
    assert listed.content == plain.get("/reports", headers=tokens["ven-a"]).content


def _report(i: int, event_id: str, object_id: str | None = None) -> dict[str, Any]:
    body = {"id": object_id or f"r-{i}", "eventID": event_id, "clientName": "c"}
    return {
        "object_id": body["id"],
        "body_json": wire_json(body),
        "created": datetime(2030, 1, 15, 1, 0, i, tzinfo=UTC),
        "client_id": "ven-a",
        "name": "c",
        "event_id": event_id,
    }


def test_reports_posted_together_commit_together(database_url: str) -> None:  # noqa: F811
    engine = make_engine(database_url)
    create_all(engine)
    with Session(engine) as session:
        create_object(
            session=session,
            object_id="ev-1",
            object_type="EVENT",
            body={"id": "ev-1"},
            created=datetime(2030, 1, 1, tzinfo=UTC),
            program_id="prog-9",
        )
        session.commit()
    raw = RawStore(engine)
    groups: list[int] = []
    insert = raw._insert_committed

    def counting(rows: list[dict[str, Any]]) -> list[bool]:
        groups.append(len(rows))
        return insert(rows)

    raw._insert_committed = counting  # type: ignore[method-assign]

    async def post(reports: list[dict[str, Any]]) -> list[bool | BaseException]:
        tasks = [raw.create_report(**r) for r in reports]
        return await asyncio.gather(*tasks, return_exceptions=True)

    # one turn of the event loop: one transaction; the report of a missing event alone refused
    reports = [_report(0, "ev-1"), _report(1, "no-event"), _report(2, "ev-1")]
    assert asyncio.run(post(reports)) == [True, False, True]
    assert groups == [3]
    # a unique clash in a group: the group is retried report by report, only the clash fails
    groups.clear()
    results = asyncio.run(post([_report(3, "ev-1"), _report(4, "ev-1", object_id="r-0")]))
    assert results[0] is True and isinstance(results[1], raw.integrity_error)
    assert groups == [2, 1, 1]
    with Session(engine) as session:
        rows = list_wire(
            session=session,
            object_type="REPORT",
            filters=Filters(program_id="prog-9"),  # copied from the event
            skip=0,
            limit=50,
        )
    assert rows == [(_report(i, "ev-1")["body_json"], "[]") for i in (0, 2, 3)]
    engine.dispose()


def test_wal_checkpointer_moves_commits_into_the_database_file(tmp_path: Path) -> None:
    def rows_in_database_file(path: Path) -> int:
        # immutable: reads the main file only, ignoring the WAL
        with sqlite3.connect(f"file:{path}?immutable=1", uri=True) as conn:
            count: int = conn.execute("SELECT count(*) FROM oadr_object").fetchone()[0]
        return count

    for background in (False, True):
        path = tmp_path / f"vtn-{background}.db"
        engine = make_engine(f"sqlite:///{path}")
        create_all(engine)
        with sqlite3.connect(path) as conn:  # the tables into the database file
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        assert rows_in_database_file(path) == 0
        checkpointer = WalCheckpointer(str(path), interval_s=0.02)
        if background:
            checkpointer.start()
        with Session(engine) as session:
            for i in range(50):
                create_object(
                    session=session,
                    object_id=f"o-{i}",
                    object_type="REPORT",
                    body={"i": i},
                    created=datetime(2030, 1, 1, tzinfo=UTC),
                )
                session.commit()
        deadline = time.monotonic() + 5
        while background and rows_in_database_file(path) < 50 and time.monotonic() < deadline:
            time.sleep(0.02)
        checkpointer.stop()
        # without the thread, 50 small commits stay below the backstop: all still in the WAL
        assert rows_in_database_file(path) == (50 if background else 0)
        engine.dispose()


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (b"", (0, 50, None, None, None)),
        (b"skip=3&limit=007", (3, 7, None, None, None)),
        (b"limit=0", (0, 0, None, None, None)),
        (b"targets=a&targets=%E3%81%82", (0, 50, ("a", "あ"), None, None)),
        (b"programID=Ab_9-x&active=false", (0, 50, None, "Ab_9-x", False)),
        (b"active=true", (0, 50, None, None, True)),
        (b"limit=51", None),  # over the page limit: FastAPI's 400
        (b"skip=2147483648", None),
        (b"skip=-1", None),
        (b"limit=%2B5", None),  # "+5": FastAPI decides
        (b"skip=1&skip=2", None),
        (b"active=1", None),
        (b"targets=", None),
        (b"targets=" + b"x" * 129, None),
        (b"targets=a%00b", None),  # U+0000: FastAPI's 400
        (b"programID=a%20b", None),
        (b"programID=", None),
        (b"other=1", None),
    ],
)
def test_fast_path_query_parsing_accepts_only_plain_forms(
    query: bytes, expected: tuple[Any, ...] | None
) -> None:
    parsed = parse_event_query(query, 50)
    if expected is None:
        assert parsed is None
        return
    assert parsed is not None
    got = (parsed.page.skip, parsed.page.limit, parsed.targets, parsed.program_id, parsed.active)
    assert got == expected


@pytest.mark.parametrize("strict", [False, True], ids=["tolerant", "strict"])
def test_resource_fast_path_answers_as_the_route(
    database_url: str,  # noqa: F811
    registry: ClientRegistry,  # noqa: F811
    strict: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``POST /resources`` (issue 11 item 3): the fast path answers every request as FastAPI's
    route does — status, content type, body — and notifies each created resource once."""
    answered: list[bool] = []
    original = FastPaths._create_resource

    async def counting(self: FastPaths, *args: Any) -> bool:
        answered.append(await original(self, *args))
        return answered[-1]

    monkeypatch.setattr(FastPaths, "_create_resource", counting)
    settings = VtnSettings(
        database_url=database_url, base_url="https://vtn.test", strict_input=strict
    )
    notified: list[tuple[Any, ...]] = []

    class Recording:
        def publish(self, *call: Any) -> None:
            notified.append(call)

    def app(fast_paths: bool) -> FastAPI:
        made = create_app(
            settings, registry, settings.token_service(registry), notifier=Recording()
        )
        return made if fast_paths else _without_fast_paths(made)

    with (
        TestClient(app(True), base_url="https://vtn.test") as fast,
        TestClient(app(False), base_url="https://vtn.test") as plain,
    ):
        tokens = {who: {"Authorization": f"Bearer {fetch_token(fast, who)}"} for who in SECRETS}
        tokens["ven-a no write_vens"] = {
            "Authorization": f"Bearer {fetch_token(fast, 'ven-a', 'write_reports')}"
        }
        tokens["nobody"] = {}
        vens = {}
        for who in ("ven-a", "ven-b"):
            create = {"objectType": "VEN_VEN_REQUEST", "venName": f"gateway-{who}"}
            resp = fast.post("/vens", json=create, headers=tokens[who])
            assert resp.status_code == 201, resp.text
            vens[who] = resp.json()["id"]
        taken = {
            "objectType": "VEN_RESOURCE_REQUEST",
            "resourceName": "taken",
            "venID": vens["ven-b"],
        }
        assert fast.post("/resources", json=taken, headers=tokens["ven-b"]).status_code == 201
        notified.clear()
        mine = {
            "objectType": "VEN_RESOURCE_REQUEST",
            "resourceName": "taken",
            "venID": vens["ven-a"],
        }
        bodies: list[bytes] = [
            json.dumps(mine).encode(),  # another VEN's name: 409, naming neither
            json.dumps({**mine, "venID": vens["ven-b"]}).encode(),  # another's ven: 404
            json.dumps({**mine, "venID": "no-such-ven"}).encode(),  # as a missing one
            json.dumps({**mine, "venID": "not an id!"}).encode(),
            json.dumps({**mine, "targets": ["unit-1"]}).encode(),  # only BL grants targets
            json.dumps({**mine, "objectType": "BL_RESOURCE_REQUEST", "clientID": "ven-a"}).encode(),
            json.dumps({**mine, "objectType": "VEN_VEN_REQUEST"}).encode(),
            json.dumps({**mine, "resourceName": ""}).encode(),
            json.dumps({**mine, "resourceName": 5}).encode(),
            json.dumps({k: v for k, v in mine.items() if k != "venID"}).encode(),
            json.dumps({**mine, "color": "blue"}).encode(),  # tolerant: 409, strict: 400
            json.dumps({**mine, "attributes": [{"type": "X", "values": [1e400]}]}).encode(),
            json.dumps({**mine, "attributes": [{"type": "X", "values": ["NaN"]}]})
            .replace('"NaN"', "NaN")
            .encode(),
            b'{"objectType": "VEN_RESOURCE_REQUEST", "objectType": "VEN_RESOURCE_REQUEST"}',
            b"{not json",
            b"[1, 2]",
            b"",
        ]
        pairs: list[tuple[httpx.Response, httpx.Response]] = []
        for headers in tokens.values():
            for content in bodies:
                h = {**headers, "Content-Type": "application/json"}
                a, b = (c.post("/resources", content=content, headers=h) for c in (fast, plain))
                pairs.append((a, b))
        for a, b in pairs:
            assert (a.status_code, a.headers["content-type"], a.content) == (
                b.status_code,
                b.headers["content-type"],
                b.content,
            ), (a.request.headers.get("authorization", "")[:20], a.request.content)
        statuses = {a.status_code for a, _ in pairs}
        assert {400, 401, 403, 404, 409} <= statuses
        assert not statuses & {201, 500}
        assert notified == []  # nothing created, nothing notified
        assert answered.count(True) >= len(bodies) * 2 and answered.count(False) >= len(bodies)
        # created: the same answer apart from what the VTN provisions; notified once each
        created = []
        for c, name in ((fast, "heater-fast"), (plain, "heater-plain")):
            body = {**mine, "resourceName": name, "color": "blue"}
            resp = c.post("/resources", json=body, headers=tokens["ven-a"])
            if strict:  # refused, as FastAPI's; without the unknown property: created
                assert resp.status_code == 400 and "color" in resp.text, resp.text
                del body["color"]
                resp = c.post("/resources", json=body, headers=tokens["ven-a"])
            assert resp.status_code == 201, resp.text  # tolerant: dropped, as FastAPI's
            created.append(resp.json())
        assert [call[2]["resourceName"] for call in notified] == ["heater-fast", "heater-plain"]
        assert [call[2] for call in notified] == created
        for key in ("id", "createdDateTime", "modificationDateTime", "resourceName"):
            assert created[0].pop(key) != created[1].pop(key)
        assert created[0] == created[1]
        assert created[0]["clientID"] == "ven-a" and "color" not in created[0]
        # a name taken by an earlier resource: 409 on both paths, the same bytes
        again = [
            c.post(
                "/resources", json={**mine, "resourceName": "heater-fast"}, headers=tokens["ven-a"]
            )
            for c in (fast, plain)
        ]
        assert again[0].status_code == 409 and again[0].content == again[1].content
        listed = fast.get("/resources", headers=tokens["ven-a"])
        assert [r["resourceName"] for r in listed.json()] == ["heater-fast", "heater-plain"]
        assert listed.content == plain.get("/resources", headers=tokens["ven-a"]).content


def _resource(name: str, ven_id: str = "ven-1", client_id: str = "ven-a") -> dict[str, Any]:
    return {
        "object_id": f"id-{name}",
        "body_json": wire_json({"id": f"id-{name}", "resourceName": name}),
        "created": datetime(2030, 1, 15, 1, 0, tzinfo=UTC),
        "client_id": client_id,
        "name": name,
        "ven_id": ven_id,
    }


def test_resources_posted_together_commit_together(database_url: str) -> None:  # noqa: F811
    """The resources' group commit (issue 11 item 3) checks each resource as the route did —
    its ven the client's, its name free (also of one earlier in the same group) — and a clash
    only the unique index sees fails that resource alone."""
    engine = make_engine(database_url)
    create_all(engine)
    with Session(engine) as session:
        for ven_id, client_id in (("ven-1", "ven-a"), ("ven-2", "ven-b")):
            create_object(
                session=session,
                object_id=ven_id,
                object_type="VEN",
                body={"id": ven_id},
                created=datetime(2030, 1, 1, tzinfo=UTC),
                client_id=client_id,
            )
        # a row whose unique key the name check does not look at (only the index sees it)
        create_object(
            session=session,
            object_id="odd",
            object_type="RESOURCE",
            body={"id": "odd"},
            created=datetime(2030, 1, 1, tzinfo=UTC),
            name="something else",
            unique_key="RESOURCE:clash",
        )
        session.commit()
    raw = RawStore(engine)
    groups: list[int] = []
    insert = raw._insert_resources

    def counting(rows: list[dict[str, Any]]) -> list[str]:
        groups.append(len(rows))
        return insert(rows)  # type: ignore[return-value]

    raw._insert_resources = counting  # type: ignore[assignment]

    async def post(resources: list[dict[str, Any]]) -> list[object]:
        tasks = [raw.create_resource(**r) for r in resources]
        return await asyncio.gather(*tasks, return_exceptions=True)

    batch = [
        _resource("a"),
        _resource("b", ven_id="ven-2"),  # ven-b's ven
        _resource("c", ven_id="no-ven"),
        _resource("a", client_id="ven-b", ven_id="ven-2"),  # taken earlier in this group
        _resource("d"),
    ]
    batch[3]["object_id"] = "id-a2"
    assert asyncio.run(post(batch)) == ["stored", "no ven", "no ven", "name taken", "stored"]
    assert groups == [5]
    groups.clear()
    results = asyncio.run(post([_resource("e"), _resource("clash"), _resource("a")]))
    assert results[0] == "stored" and results[2] == "name taken"
    assert isinstance(results[1], raw.integrity_error)
    assert groups == [3, 1, 1, 1]
    with Session(engine) as session:
        rows = list_wire(
            session=session,
            object_type="RESOURCE",
            filters=Filters(client_id="ven-a", ven_id="ven-1"),
            skip=0,
            limit=50,
        )
    assert rows == [(_resource(n)["body_json"], "[]") for n in ("a", "d", "e")]
    engine.dispose()


def test_granted_among_is_the_granted_targets_asked_for(database_url: str) -> None:  # noqa: F811
    """A VEN's event read checks only the targets it asks for (issue 11 item 3: a cloud
    polling 50 names at a time made the VTN read its whole fleet's targets per query) — and
    answers exactly ``targets_of_vens ∩ asked``, on the session and on the raw connection."""
    engine = make_engine(database_url)
    create_all(engine)
    created = datetime(2030, 1, 1, tzinfo=UTC)
    with Session(engine) as session:
        for client, ven in (("ven-a", "v-a"), ("ven-b", "v-b")):
            create_object(
                session=session,
                object_id=ven,
                object_type="VEN",
                body={"id": ven},
                created=created,
                client_id=client,
                name=ven,
                targets=(f"group-{client}",),
            )
            for k in range(30):
                name = f"{client}-unit-{k}"
                create_object(
                    session=session,
                    object_id=f"r-{name}",
                    object_type="RESOURCE",
                    body={"id": f"r-{name}"},
                    created=created,
                    client_id=client,
                    name=name,
                    ven_id=ven,
                    targets=(name,),
                )
        session.commit()
    raw = RawStore(engine)
    asks = [
        [],
        ["ven-a-unit-3"],
        ["ven-a-unit-3", "ven-b-unit-3", "nobody", "group-ven-a", "group-ven-b"],
        [f"ven-a-unit-{k}" for k in range(0, 30, 2)] + ["ven-b-unit-1"],
        [f"{c}-unit-{k}" for c in ("ven-a", "ven-b") for k in range(60)],  # > 100 asked
    ]
    with Session(engine) as session, raw.connect() as connection:
        for client in ("ven-a", "ven-b", "nobody"):
            every = targets_of_vens(session=session, client_id=client)
            assert len(every) == (31 if client != "nobody" else 0)
            for asked in asks:
                expected = every & frozenset(asked)
                assert granted_among(session=session, client_id=client, wanted=asked) == expected
                assert raw.granted_among(connection, client, asked) == expected
