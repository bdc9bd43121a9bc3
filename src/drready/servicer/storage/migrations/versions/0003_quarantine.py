"""The quarantine: VEN reports and resources the servicer set aside, with the reason (S1).

A frozen copy of ``drready.servicer.storage.db`` as of revision 0003 (allowed values written
out, not imported, so later model changes cannot rewrite history).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None

_ID = sa.String(128)
_REASONS = (
    "unreadable",
    "implausible",
    "unknown_resource",
    "not_owner",
    "not_our_event",
    "refused",
)


def upgrade() -> None:
    """Create the table of revision 0003."""
    reasons = ", ".join(f"'{r}'" for r in _REASONS)
    op.create_table(
        "quarantined_report",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("report_id", _ID, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("client_id", _ID, nullable=True),
        sa.Column("resource_name", _ID, nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("quarantined_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_quarantined_report"),
        sa.UniqueConstraint(
            "report_id",
            "resource_name",
            "reason",
            name="uq_quarantined_report_report_id_resource_name_reason",
        ),
        sa.CheckConstraint(f"reason IN ({reasons})", name="ck_quarantined_report_reason"),
    )
    op.create_index(
        "ix_quarantined_report_quarantined_at", "quarantined_report", ["quarantined_at"]
    )


def downgrade() -> None:
    """Drop the table of revision 0003."""
    op.drop_table("quarantined_report")
