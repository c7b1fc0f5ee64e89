"""Chats: each chat of a session's stored history, its newest message, unread count and read
mark, kept by the writer with the messages; filled here from the messages stored so far (no read
mark: every inbound message of a chat counts as unread).

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "chats",
        sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.id"), primary_key=True),
        sa.Column("session", sa.String(64), primary_key=True),
        sa.Column("chat_id", sa.String(128), primary_key=True),
        sa.Column("last_message_id", sa.String(40), nullable=False),
        sa.Column("unread", sa.Integer, nullable=False, server_default="0"),
        sa.Column("read_up_to", sa.String(40), nullable=True),
        sa.Column("read_at", sa.BigInteger, nullable=True),
        sa.Column("phone", sa.String(32), nullable=True),
    )
    op.create_index("ix_chats_activity", "chats", ["tenant_id", "session", "last_message_id"])
    op.execute(
        "INSERT INTO chats (tenant_id, session, chat_id, last_message_id, unread) "
        "SELECT tenant_id, session, chat_id, MAX(id), "
        "SUM(CASE WHEN direction = 'in' THEN 1 ELSE 0 END) "
        "FROM messages GROUP BY tenant_id, session, chat_id"
    )


def downgrade() -> None:
    op.drop_index("ix_chats_activity", "chats")
    op.drop_table("chats")
