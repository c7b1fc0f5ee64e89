"""Request ids: the ``X-Request-Id`` of the request that caused each event, that queued each
outbound message (its later events carry it) and of each webhook delivery's event (sent as the
``X-Zapgate-Request-Id`` header). Nullable columns with no default: on PostgreSQL adding them
rewrites nothing; on SQLite they are plain ``ADD COLUMN`` (the messages table is never copied,
so its full-text triggers stay).

Revision ID: 0016
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

TABLES = ("events", "messages", "webhook_deliveries")


def upgrade() -> None:
    for table in TABLES:
        op.add_column(table, sa.Column("request_id", sa.String(64), nullable=True))


def downgrade() -> None:
    for table in reversed(TABLES):
        op.drop_column(table, "request_id")
