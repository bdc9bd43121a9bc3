"""The VTN's tables get their indexes, also on a database made before an index existed, and
the object lists are served in order by (object_type, seq) on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, inspect, text

from drready.openadr.vtn.app import make_engine
from drready.openadr.vtn.store import Base, create_all


def _indexes(url: str) -> dict[str, list[str | None]]:
    engine = create_engine(url)
    try:
        return {
            str(ix["name"]): list(ix["column_names"])
            for ix in inspect(engine).get_indexes("oadr_object")
        }
    finally:
        engine.dispose()


@pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)
def test_create_all_adds_indexes_missing_from_an_existing_table(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        Base.metadata.create_all(engine)
        with engine.begin() as conn:  # as a database made before the index was added
            conn.execute(text("DROP INDEX ix_oadr_object_type_seq"))
        assert "ix_oadr_object_type_seq" not in _indexes(db_url)
        create_all(engine)
        assert _indexes(db_url)["ix_oadr_object_type_seq"] == ["object_type", "seq"]
        create_all(engine)  # idempotent
    finally:
        engine.dispose()


@pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)
def test_a_list_of_one_type_walks_that_types_index_in_order(db_url: str) -> None:
    """20 events among 3 000 reports, statistics never gathered: the plan reads the events
    through ix_oadr_object_type_seq (no scan of the reports)."""
    engine = make_engine(db_url)
    try:
        create_all(engine)
        with engine.begin() as conn:
            rows = [("EVENT", i) for i in range(20)] + [("REPORT", i) for i in range(3000)]
            conn.execute(
                text(
                    "INSERT INTO oadr_object (id, object_type, targets, body, created, modified)"
                    " VALUES (:id, :t, '[]', '{}', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                ),
                [{"id": f"{t}-{i}", "t": t} for t, i in rows],
            )
            query = "SELECT seq FROM oadr_object WHERE object_type = 'EVENT' ORDER BY seq LIMIT 50"
            if engine.dialect.name == "sqlite":
                plan = " ".join(
                    str(r[-1]) for r in conn.execute(text(f"EXPLAIN QUERY PLAN {query}"))
                )
                assert "ix_oadr_object_type_seq" in plan and "TEMP B-TREE" not in plan, plan
            else:
                plan = " ".join(str(r[0]) for r in conn.execute(text(f"EXPLAIN {query}")))
                assert "ix_oadr_object_type_seq" in plan and "Sort" not in plan, plan
            assert len(conn.execute(text(query)).fetchall()) == 20
    finally:
        engine.dispose()


@pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)
def test_a_vens_target_checks_start_from_the_targets_asked_not_from_its_fleet(
    db_url: str,
) -> None:
    """A maker cloud of 100 000 units asks for its events 50 names at a time and reports on
    each event it answers. As a join with bound parameters SQLite walked every resource of the
    type index per question (0.8 s at 100 000; registering them took 20 minutes). The plans now
    look the asked targets up on the target index, and the answers are those of the full
    granted set, for the owner and for another client."""
    from sqlalchemy.orm import Session

    from drready.openadr.vtn import store

    engine = make_engine(db_url)
    try:
        create_all(engine)
        n_units = 3000
        with engine.begin() as conn:
            insert = text(
                "INSERT INTO oadr_object (id, object_type, client_id, ven_id, program_id, targets,"
                " body, created, modified) VALUES (:id, :t, :client, :ven, :program, '[]', '{}',"
                " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
            objects = [
                {"id": "ven-a", "t": "VEN", "client": "cloud-a", "ven": None, "program": None},
                {"id": "ven-b", "t": "VEN", "client": "cloud-b", "ven": None, "program": None},
            ]
            objects += [
                {"id": f"res-{i}", "t": "RESOURCE", "client": "cloud-a", "ven": "ven-a"}
                | {"program": None}
                for i in range(n_units)
            ]
            objects += [
                {"id": f"ev-{i}", "t": "EVENT", "client": "bl", "ven": None, "program": "p1"}
                for i in (7, 2999)
            ]
            conn.execute(insert, objects)
            conn.execute(
                text(
                    "INSERT INTO oadr_target (object_seq, target) SELECT seq, 'unit-' || "
                    "substr(id, 5) FROM oadr_object WHERE id LIKE 'res-%'"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO oadr_target (object_seq, target) SELECT seq, 'unit-' || "
                    "substr(id, 4) FROM oadr_object WHERE id LIKE 'ev-%'"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO oadr_target (object_seq, target) SELECT seq, 'ven-b-name' "
                    "FROM oadr_object WHERE id = 'ven-b'"
                )
            )
            if engine.dialect.name == "sqlite":
                params = {f"w{i}": f"unit-{i}" for i in range(50)} | {"client": "cloud-a"}
                for statement, args in [
                    (store._granted_among_sql(50), params),
                    (store._VISIBLE_EVENT, {"object_id": "ev-7", "client": "cloud-a"}),
                ]:
                    plan = [
                        str(r[-1])
                        for r in conn.execute(text(f"EXPLAIN QUERY PLAN {statement}"), args)
                    ]
                    assert "MULTI-INDEX OR" not in plan, plan
                    assert not any(
                        step.startswith("SEARCH o USING INDEX ix_oadr_object_type_seq")
                        for step in plan
                    ), plan
        with Session(engine) as session:
            asked = [f"unit-{i}" for i in (0, 7, 2999)] + ["unit-9999", "ven-b-name"]
            for client in ("cloud-a", "cloud-b"):
                everything = store.targets_of_vens(session=session, client_id=client)
                got = store.granted_among(session=session, client_id=client, wanted=asked)
                assert got == everything & set(asked)
            assert store.granted_among(session=session, client_id="cloud-a", wanted=asked) == {
                "unit-0",
                "unit-7",
                "unit-2999",
            }
            assert store.visible_event_program_id(
                session=session, event_id="ev-7", client_id="cloud-a"
            ) == ("p1",)
            assert (
                store.visible_event_program_id(
                    session=session, event_id="ev-7", client_id="cloud-b"
                )
                is None
            )
    finally:
        engine.dispose()
