"""The running service's tables: orders of the north-bound API, the schedule's jobs, settlements.

A frozen copy of ``drready.servicer.storage.db`` as of revision 0002 (allowed values written
out, not imported, so later model changes cannot rewrite history).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

_ID = sa.String(128)
_ORDER_STATUSES = (
    "requested",
    "collecting",
    "dispatched",
    "accepted",
    "rejected",
    "delivering",
    "delivered",
    "settled",
    "expired",
)


def _instant(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    """Create the tables of revision 0002."""
    statuses = ", ".join(f"'{s}'" for s in _ORDER_STATUSES)
    op.create_table(
        "dr_order",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("client_id", _ID, nullable=False),
        sa.Column("idempotency_key", _ID, nullable=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("direction", sa.String(8), nullable=False),
        _instant("window_start"),
        _instant("window_end"),
        sa.Column("energy_kwh", sa.Double(), nullable=True),
        sa.Column("power_kw", sa.JSON(), nullable=True),
        sa.Column("target_kwh", sa.Double(), nullable=False),
        _instant("deadline", nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("potential_request_id", _ID, nullable=True),
        _instant("potential_asked_at", nullable=True),
        sa.Column(
            "dispatch_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("figures", sa.JSON(), nullable=True),
        _instant("created_at"),
        _instant("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_dr_order"),
        sa.UniqueConstraint(
            "client_id", "idempotency_key", name="uq_dr_order_client_id_idempotency_key"
        ),
        sa.CheckConstraint("direction IN ('up', 'down')", name="ck_dr_order_direction"),
        sa.CheckConstraint(f"status IN ({statuses})", name="ck_dr_order_status"),
        sa.CheckConstraint("target_kwh >= 0", name="ck_dr_order_target_kwh"),
        sa.ForeignKeyConstraint(
            ["potential_request_id"],
            ["potential_request.id"],
            name="fk_dr_order_potential_request_id_potential_request",
        ),
        sa.ForeignKeyConstraint(
            ["dispatch_id"], ["dispatch.id"], name="fk_dr_order_dispatch_id_dispatch"
        ),
    )
    op.create_index("ix_dr_order_status", "dr_order", ["status"])
    op.create_index("ix_dr_order_window_start", "dr_order", ["window_start"])

    op.create_table(
        "scheduler_job",
        sa.Column("name", sa.String(64), nullable=False),
        _instant("last_due_at", nullable=True),
        _instant("last_attempt_at", nullable=True),
        sa.Column("last_ok", sa.Boolean(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        _instant("updated_at"),
        sa.PrimaryKeyConstraint("name", name="pk_scheduler_job"),
    )

    op.create_table(
        "settlement",
        sa.Column(
            "dispatch_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("event_day", sa.Date(), nullable=False),
        _instant("settled_at"),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("csv", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("dispatch_id", name="pk_settlement"),
        sa.ForeignKeyConstraint(
            ["dispatch_id"],
            ["dispatch.id"],
            name="fk_settlement_dispatch_id_dispatch",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_settlement_event_day", "settlement", ["event_day"])


def downgrade() -> None:
    """Drop the tables of revision 0002."""
    op.drop_table("settlement")
    op.drop_table("scheduler_job")
    op.drop_table("dr_order")
