"""optimizer: candles, candidates, one running run per scope

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 03:44:34.680463
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "candles",
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("timeframe", sa.String(length=8), nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("open", sa.Float(), nullable=False),
        sa.Column("high", sa.Float(), nullable=False),
        sa.Column("low", sa.Float(), nullable=False),
        sa.Column("close", sa.Float(), nullable=False),
        sa.Column("volume", sa.Float(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("symbol", "timeframe", "time", name=op.f("pk_candles")),
    )
    op.create_table(
        "optimization_candidates",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column(
            "parameters",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("in_sample_fitness", sa.Float(), nullable=True),
        sa.Column("out_of_sample_fitness", sa.Float(), nullable=True),
        sa.Column(
            "metrics",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["optimization_runs.run_id"],
            name=op.f("fk_optimization_candidates_run_id_optimization_runs"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_optimization_candidates")),
        sa.UniqueConstraint("run_id", "position", name=op.f("uq_optimization_candidates_run_id")),
    )
    with op.batch_alter_table("optimization_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("baseline_version", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("requested_by", sa.String(length=128), nullable=True))
        batch_op.create_index(
            "uq_optimization_runs_one_running",
            ["scope"],
            unique=True,
            sqlite_where=sa.text("status = 'RUNNING'"),
            postgresql_where=sa.text("status = 'RUNNING'"),
        )


def downgrade() -> None:
    with op.batch_alter_table("optimization_runs", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_optimization_runs_one_running",
            sqlite_where=sa.text("status = 'RUNNING'"),
            postgresql_where=sa.text("status = 'RUNNING'"),
        )
        batch_op.drop_column("requested_by")
        batch_op.drop_column("baseline_version")

    op.drop_table("optimization_candidates")
    op.drop_table("candles")
