"""History pages filtered by time seek an index (tenant, session, created_at, id).

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_messages_time", "messages", ["tenant_id", "session", "created_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_messages_time", table_name="messages")
