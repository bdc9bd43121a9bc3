"""Initial servicer schema: registry, potentials, dispatch, readings, meter slots, tracking.

A frozen copy of ``drready.servicer.storage.db`` as of revision 0001 (allowed values written out,
not imported, so later model changes cannot rewrite history).

Revision ID: 0001
Revises: (none)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

_ID = sa.String(128)


def _serial() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _instant(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    """Create the tables of revision 0001."""
    op.create_table(
        "ven",
        sa.Column("id", _ID, nullable=False),
        sa.Column("ven_name", _ID, nullable=False),
        sa.Column("route", sa.String(16), nullable=False),
        sa.Column("client_id", _ID, nullable=True),
        _instant("created_at"),
        _instant("last_seen_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_ven"),
        sa.UniqueConstraint("ven_name", name="uq_ven_ven_name"),
        sa.CheckConstraint("route IN ('gateway', 'cloud')", name="ck_ven_route"),
    )
    op.create_index("ix_ven_client_id", "ven", ["client_id"])

    op.create_table(
        "resource",
        sa.Column("id", _ID, nullable=False),
        sa.Column("ven_id", _ID, nullable=False),
        sa.Column("resource_name", _ID, nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("n_units", sa.Integer(), nullable=False),
        sa.Column("rated_power_kw", sa.Double(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        _instant("last_seen_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_resource"),
        sa.ForeignKeyConstraint(["ven_id"], ["ven.id"], name="fk_resource_ven_id_ven"),
        sa.UniqueConstraint("ven_id", "resource_name", name="uq_resource_ven_id_resource_name"),
        sa.CheckConstraint("kind IN ('unit', 'group')", name="ck_resource_kind"),
        sa.CheckConstraint("state IN ('active', 'offline', 'retired')", name="ck_resource_state"),
        sa.CheckConstraint("n_units >= 1", name="ck_resource_n_units"),
        sa.CheckConstraint("rated_power_kw > 0", name="ck_resource_rated_power_kw"),
    )
    op.create_index("ix_resource_state", "resource", ["state"])

    op.create_table(
        "market_registration",
        sa.Column("resource_id", _ID, nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("nonce", sa.LargeBinary(), nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False),
        _instant("updated_at"),
        sa.PrimaryKeyConstraint("resource_id", name="pk_market_registration"),
        sa.ForeignKeyConstraint(
            ["resource_id"],
            ["resource.id"],
            name="fk_market_registration_resource_id_resource",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_market_registration_key_id", "market_registration", ["key_id"])

    op.create_table(
        "potential_request",
        sa.Column("id", _ID, nullable=False),
        _instant("window_start"),
        _instant("window_end"),
        _instant("requested_at"),
        sa.PrimaryKeyConstraint("id", name="pk_potential_request"),
    )
    op.create_index("ix_potential_request_window_start", "potential_request", ["window_start"])

    op.create_table(
        "potential",
        sa.Column("request_id", _ID, nullable=False),
        sa.Column("resource_id", _ID, nullable=False),
        sa.Column("up_kwh", sa.Double(), nullable=False),
        sa.Column("down_kwh", sa.Double(), nullable=False),
        sa.Column("confidence", sa.Double(), nullable=False),
        sa.Column("slots", sa.JSON(), nullable=True),
        sa.Column("report_id", _ID, nullable=False),
        _instant("received_at"),
        sa.PrimaryKeyConstraint("request_id", "resource_id", name="pk_potential"),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["potential_request.id"],
            name="fk_potential_request_id_potential_request",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["resource_id"], ["resource.id"], name="fk_potential_resource_id_resource"
        ),
    )
    op.create_index("ix_potential_resource_id", "potential", ["resource_id"])

    op.create_table(
        "dispatch",
        sa.Column("id", _serial(), autoincrement=True, nullable=False),
        sa.Column("label", _ID, nullable=False),
        sa.Column("direction", sa.String(8), nullable=False),
        _instant("window_start"),
        _instant("window_end"),
        sa.Column("target_kind", sa.String(8), nullable=False),
        sa.Column("target", sa.JSON(), nullable=False),
        _instant("created_at"),
        sa.Column("status", sa.String(8), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_dispatch"),
        sa.CheckConstraint("direction IN ('up', 'down')", name="ck_dispatch_direction"),
        sa.CheckConstraint(
            "target_kind IN ('energy', 'power', 'price')", name="ck_dispatch_target_kind"
        ),
        sa.CheckConstraint("status IN ('open', 'closed')", name="ck_dispatch_status"),
    )
    op.create_index("ix_dispatch_status", "dispatch", ["status"])

    op.create_table(
        "assignment",
        sa.Column("id", _serial(), autoincrement=True, nullable=False),
        sa.Column("dispatch_id", _serial(), nullable=False),
        sa.Column("resource_id", _ID, nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("requested_kwh", sa.Double(), nullable=False),
        sa.Column("event_id", _ID, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("accepted_kwh", sa.Double(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("late", sa.Boolean(), nullable=False),
        _instant("sent_at", nullable=True),
        _instant("responded_at", nullable=True),
        sa.Column("report_id", _ID, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_assignment"),
        sa.ForeignKeyConstraint(
            ["dispatch_id"],
            ["dispatch.id"],
            name="fk_assignment_dispatch_id_dispatch",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["resource_id"], ["resource.id"], name="fk_assignment_resource_id_resource"
        ),
        sa.UniqueConstraint("event_id", name="uq_assignment_event_id"),
        sa.UniqueConstraint(
            "dispatch_id",
            "resource_id",
            "round",
            name="uq_assignment_dispatch_id_resource_id_round",
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'sent', 'accepted', 'partial', 'rejected', 'silent', "
            "'cancelled')",
            name="ck_assignment_status",
        ),
        sa.CheckConstraint("round >= 1", name="ck_assignment_round"),
        sa.CheckConstraint("requested_kwh > 0", name="ck_assignment_requested_kwh"),
        sa.CheckConstraint(
            "accepted_kwh IS NULL OR accepted_kwh >= 0", name="ck_assignment_accepted_kwh"
        ),
    )
    op.create_index("ix_assignment_resource_id", "assignment", ["resource_id"])
    op.create_index("ix_assignment_status_sent_at", "assignment", ["status", "sent_at"])

    op.create_table(
        "power_reading",
        sa.Column("resource_id", _ID, nullable=False),
        _instant("timestamp"),
        sa.Column("power_w", sa.Double(), nullable=False),
        sa.Column("cumulative_kwh", sa.Double(), nullable=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("report_id", _ID, nullable=True),
        sa.PrimaryKeyConstraint("resource_id", "timestamp", name="pk_power_reading"),
        sa.ForeignKeyConstraint(
            ["resource_id"], ["resource.id"], name="fk_power_reading_resource_id_resource"
        ),
        sa.CheckConstraint("source IN ('measured', 'estimated')", name="ck_power_reading_source"),
    )

    op.create_table(
        "meter_slot",
        sa.Column("resource_id", _ID, nullable=False),
        _instant("slot_start"),
        sa.Column("energy_kwh", sa.Double(), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        _instant("updated_at"),
        sa.PrimaryKeyConstraint("resource_id", "slot_start", name="pk_meter_slot"),
        sa.ForeignKeyConstraint(
            ["resource_id"], ["resource.id"], name="fk_meter_slot_resource_id_resource"
        ),
    )
    op.create_index("ix_meter_slot_slot_start", "meter_slot", ["slot_start"])

    op.create_table(
        "processed_report",
        sa.Column("id", _ID, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        _instant("processed_at"),
        sa.PrimaryKeyConstraint("id", name="pk_processed_report"),
    )

    op.create_table(
        "tracking_run",
        sa.Column("id", _serial(), autoincrement=True, nullable=False),
        _instant("started_at"),
        sa.Column("offered_kw", sa.Double(), nullable=False),
        sa.Column("tolerance_share", sa.Double(), nullable=False),
        sa.Column("step_s", sa.Double(), nullable=False),
        sa.Column("label", _ID, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_tracking_run"),
    )

    op.create_table(
        "tracking_point",
        sa.Column("run_id", _serial(), nullable=False),
        _instant("t"),
        sa.Column("command_kw", sa.Double(), nullable=False),
        sa.Column("heater_kw", sa.Double(), nullable=False),
        sa.Column("battery_kw", sa.Double(), nullable=False),
        sa.Column("output_kw", sa.Double(), nullable=False),
        sa.Column("soc_kwh", sa.Double(), nullable=False),
        sa.Column("heater_source", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "t", name="pk_tracking_point"),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["tracking_run.id"],
            name="fk_tracking_point_run_id_tracking_run",
            ondelete="CASCADE",
        ),
        sa.CheckConstraint(
            "heater_source IN ('measured', 'planned')", name="ck_tracking_point_heater_source"
        ),
    )


def downgrade() -> None:
    """Drop the tables of revision 0001 (children first)."""
    for table in (
        "tracking_point",
        "tracking_run",
        "processed_report",
        "meter_slot",
        "power_reading",
        "assignment",
        "dispatch",
        "potential",
        "potential_request",
        "market_registration",
        "resource",
        "ven",
    ):
        op.drop_table(table)
