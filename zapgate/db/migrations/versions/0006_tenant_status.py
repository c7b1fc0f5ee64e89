"""Tenants can be suspended; revocations and suspensions leave a signal every node reads.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tenants") as table:
        table.add_column(
            sa.Column("status", sa.String(12), nullable=False, server_default="active")
        )
        table.add_column(sa.Column("suspended_at", sa.BigInteger, nullable=True))
    op.create_table(
        "auth_invalidations",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("key_id", sa.String(40), nullable=True),
        sa.Column("reason", sa.String(20), nullable=False),
        sa.Column("at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_auth_invalidations_at", "auth_invalidations", ["at"])
    # the operator: the configured key and the one generated at first start
    op.execute(
        "UPDATE api_keys SET scopes = 'admin operator' WHERE tenant_id = 'default' "
        "AND name IN ('ZAPGATE_API_KEY', 'admin (generated at first start)')"
    )


def downgrade() -> None:
    op.drop_table("auth_invalidations")
    with op.batch_alter_table("tenants") as table:
        table.drop_column("suspended_at")
        table.drop_column("status")
