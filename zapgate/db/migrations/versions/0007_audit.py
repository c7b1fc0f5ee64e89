"""The audit log, and the actor of each event.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("actor", sa.String(200), nullable=True),
        sa.Column("action", sa.String(300), nullable=False),
        sa.Column("target", sa.String(300), nullable=True),
        sa.Column("result", sa.String(10), nullable=False),
        sa.Column("status", sa.Integer, nullable=True),
        sa.Column("address", sa.String(64), nullable=True),
        sa.Column("detail", JSON, nullable=True),
    )
    op.create_index("ix_audit_log_tenant", "audit_log", ["tenant_id", "id"])
    op.create_index("ix_audit_log_actor", "audit_log", ["tenant_id", "actor", "id"])
    op.create_index("ix_audit_log_action", "audit_log", ["tenant_id", "action", "id"])
    op.create_index("ix_audit_log_result", "audit_log", ["tenant_id", "result", "id"])
    op.add_column("events", sa.Column("actor", sa.String(200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("events") as table:
        table.drop_column("actor")
    op.drop_table("audit_log")
