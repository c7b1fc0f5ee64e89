"""Session leases: in cluster mode each session runs on the node holding its lease.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "session_leases",
        sa.Column("tenant_id", sa.String(64), primary_key=True),
        sa.Column("session", sa.String(64), primary_key=True),
        sa.Column("owner", sa.String(100), nullable=False),
        sa.Column("token", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_session_leases_owner", "session_leases", ["owner", "expires_at"])


def downgrade() -> None:
    op.drop_table("session_leases")
