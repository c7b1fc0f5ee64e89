"""Integrations: a subscription (``webhooks`` row) has a ``kind`` (``webhook``; the sinks
``rabbitmq``, ``nats``, ``redis``; the session integrations ``chatwoot``, ``bot``) and a
``config`` with its sealed settings, so one dispatcher, one delivery table and one retry and
replay path serve them all. Existing rows become ``webhook`` (the server default, no rewrite).
A tenant's limit of sinks (``tenant_limits.sinks``). Also: the chats a human took over from a
bot (``bot_pauses``), and what the Chatwoot mirror linked (each chat's contact and conversation;
each message posted or sent).

Revision ID: 0018
Revises: 0017
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

JsonColumn = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.add_column(
        "webhooks", sa.Column("kind", sa.String(16), nullable=False, server_default="webhook")
    )
    op.add_column("webhooks", sa.Column("config", JsonColumn, nullable=True))
    with op.batch_alter_table("tenant_limits") as table:
        table.add_column(sa.Column("sinks", sa.Integer, nullable=True))
    op.create_table(
        "bot_pauses",
        sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.id"), primary_key=True),
        sa.Column("session", sa.String(64), primary_key=True),
        sa.Column("chat", sa.String(128), primary_key=True),
        sa.Column("paused_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "chatwoot_conversations",
        sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.id"), primary_key=True),
        sa.Column("session", sa.String(64), primary_key=True),
        sa.Column("chat", sa.String(128), primary_key=True),
        sa.Column("contact_id", sa.BigInteger, nullable=False),
        sa.Column("conversation_id", sa.BigInteger, nullable=False),
        sa.Column("source_id", sa.String(200), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_index(
        "ix_chatwoot_conversations_id",
        "chatwoot_conversations",
        ["tenant_id", "session", "conversation_id"],
    )
    op.create_table(
        "chatwoot_messages",
        sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.id"), primary_key=True),
        sa.Column("message_id", sa.String(40), primary_key=True),
        sa.Column("session", sa.String(64), nullable=False),
        sa.Column("conversation_id", sa.BigInteger, nullable=False),
        sa.Column("chatwoot_id", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("chatwoot_messages")
    op.drop_index("ix_chatwoot_conversations_id", "chatwoot_conversations")
    op.drop_table("chatwoot_conversations")
    op.drop_table("bot_pauses")
    with op.batch_alter_table("tenant_limits") as table:
        table.drop_column("sinks")
    op.drop_column("webhooks", "config")
    op.drop_column("webhooks", "kind")
