"""Cluster roles: work one node at a time does for the whole cluster (the webhook dispatcher).

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cluster_roles",
        sa.Column("role", sa.String(40), primary_key=True),
        sa.Column("owner", sa.String(100), nullable=False),
        sa.Column("token", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("cluster_roles")
