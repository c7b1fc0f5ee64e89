"""Indexes that find one tenant's keys and webhook attempts (a tenant's deletion, in chunks,
and its keys list, without scanning every tenant's rows).

Revision ID: 0008
Revises: 0007
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_attempts_tenant", "webhook_attempts", ["tenant_id", "id"])
    op.create_index("ix_api_keys_tenant", "api_keys", ["tenant_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_api_keys_tenant", "api_keys")
    op.drop_index("ix_attempts_tenant", "webhook_attempts")
