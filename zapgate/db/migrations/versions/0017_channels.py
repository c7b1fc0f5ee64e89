"""Channels: each event names the channel of its session (``whatsapp``, ``telegram``, ``sms``;
null for an event of no session), and the ``fallbacks`` table (WhatsApp messages with an SMS
to send if they are not delivered in time). The column is added empty, rewriting nothing: an event
written before it is read as WhatsApp's (the only channel then). A message's channel is read
from its chat id (no column).

Revision ID: 0017
Revises: 0016
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("events", sa.Column("channel", sa.String(16), nullable=True))
    op.create_table(
        "fallbacks",
        sa.Column("message_id", sa.String(40), primary_key=True),
        sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("sms_session", sa.String(64), nullable=False),
        sa.Column("due_at", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("sms_id", sa.String(40), nullable=True),
    )
    op.create_index("ix_fallbacks_due", "fallbacks", ["status", "due_at"])


def downgrade() -> None:
    op.drop_index("ix_fallbacks_due", "fallbacks")
    op.drop_table("fallbacks")
    op.drop_column("events", "channel")
