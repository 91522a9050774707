"""alert status of blocked trades

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 02:58:53.482290
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    with op.batch_alter_table("blocked_trades", schema=None) as batch_op:
        batch_op.add_column(sa.Column("alert_status", sa.String(length=16), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_blocked_trades_alert_status"), ["alert_status"], unique=False
        )


def downgrade() -> None:

    with op.batch_alter_table("blocked_trades", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_blocked_trades_alert_status"))
        batch_op.drop_column("alert_status")
