"""Integrations: a subscription (``webhooks`` row) has a ``kind`` (``webhook``; the sinks
``rabbitmq``, ``nats``, ``redis``; the session integrations ``chatwoot``, ``bot``) and a
``config`` with its sealed settings, so one dispatcher, one delivery table and one retry and
replay path serve them all. Existing rows become ``webhook`` (the server default, no rewrite).
A tenant's limit of sinks (``tenant_limits.sinks``). A delivery's ``lane`` when it is not its
session's (a bot's: its chat's, so a slow answer in one chat holds up no other). Also: the
chats a human took over from a bot (``bot_pauses``), and what the Chatwoot mirror linked (each
chat's contact and conversation; each message posted or sent).

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
    op.add_column("webhook_deliveries", sa.Column("lane", sa.String(200), nullable=True))
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
        sa.Column("part", sa.SmallInteger, nullable=False, server_default="0"),
    )
    op.create_index("ix_chatwoot_messages_twin", "chatwoot_messages", ["tenant_id", "chatwoot_id"])


def downgrade() -> None:
    # sinks and integrations would read as webhooks (their URLs POSTed every event): drop them
    hooks = sa.table("webhooks", sa.column("id"), sa.column("kind"))
    deliveries = sa.table("webhook_deliveries", sa.column("id"), sa.column("webhook_id"))
    attempts = sa.table("webhook_attempts", sa.column("delivery_id"))
    others = sa.select(hooks.c.id).where(hooks.c.kind != "webhook")
    theirs = sa.select(deliveries.c.id).where(deliveries.c.webhook_id.in_(others))
    op.execute(sa.delete(attempts).where(attempts.c.delivery_id.in_(theirs)))
    op.execute(sa.delete(deliveries).where(deliveries.c.webhook_id.in_(others)))
    op.execute(sa.delete(hooks).where(hooks.c.kind != "webhook"))
    op.drop_index("ix_chatwoot_messages_twin", "chatwoot_messages")
    op.drop_table("chatwoot_messages")
    op.drop_index("ix_chatwoot_conversations_id", "chatwoot_conversations")
    op.drop_table("chatwoot_conversations")
    op.drop_table("bot_pauses")
    with op.batch_alter_table("tenant_limits") as table:
        table.drop_column("sinks")
    with op.batch_alter_table("webhook_deliveries") as table:
        table.drop_column("lane")
    op.drop_column("webhooks", "config")
    op.drop_column("webhooks", "kind")
