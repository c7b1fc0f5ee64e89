"""Rich messages and media: a message's type-specific content, the media it uses, the files
themselves (content-addressed per tenant) and the key that signs media links.

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

JsonColumn = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("messages") as table:
        table.add_column(sa.Column("content", JsonColumn, nullable=True))
        table.add_column(sa.Column("media_id", sa.String(40), nullable=True))
    op.create_index("ix_messages_media", "messages", ["tenant_id", "media_id"])
    op.create_table(
        "media",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("mime_type", sa.String(100), nullable=False),
        sa.Column("filename", sa.String(255), nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("tenant_id", "sha256", name="uq_media_tenant_sha256"),
    )
    op.create_index("ix_media_tenant_created", "media", ["tenant_id", "created_at"])
    with op.batch_alter_table("tenant_limits") as table:
        table.add_column(sa.Column("media_retention_days", sa.Integer, nullable=True))
    op.create_table(
        "server_secrets",
        sa.Column("name", sa.String(40), primary_key=True),
        sa.Column("value", sa.String(200), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("server_secrets")
    with op.batch_alter_table("tenant_limits") as table:
        table.drop_column("media_retention_days")
    op.drop_index("ix_media_tenant_created", "media")
    op.drop_table("media")
    op.drop_index("ix_messages_media", "messages")
    with op.batch_alter_table("messages") as table:
        table.drop_column("media_id")
        table.drop_column("content")
