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
