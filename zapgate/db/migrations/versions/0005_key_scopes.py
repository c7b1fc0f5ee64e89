"""API keys get scopes, an optional session list, an optional expiry and their last use.

Keys stored before keep what they could do: their role (``admin``) becomes their scope.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    json = sa.JSON().with_variant(JSONB(), "postgresql")
    with op.batch_alter_table("api_keys") as table:
        table.add_column(
            sa.Column("scopes", sa.String(100), nullable=False, server_default="admin")
        )
        table.add_column(sa.Column("sessions", json, nullable=True))
        table.add_column(sa.Column("expires_at", sa.BigInteger, nullable=True))
        table.add_column(sa.Column("last_used_at", sa.BigInteger, nullable=True))
    op.execute("UPDATE api_keys SET scopes = role")


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as table:
        for column in ("last_used_at", "expires_at", "sessions", "scopes"):
            table.drop_column(column)
