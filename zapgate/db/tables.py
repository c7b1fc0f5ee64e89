"""SQLAlchemy Core tables. Every table carries a tenant; times are epoch milliseconds."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

metadata = sa.MetaData()

JsonColumn = sa.JSON().with_variant(JSONB(), "postgresql")

tenants = sa.Table(
    "tenants",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("last_seq", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("status", sa.String(12), nullable=False, server_default="active"),
    sa.Column("suspended_at", sa.BigInteger, nullable=True),
)

auth_invalidations = sa.Table(
    "auth_invalidations",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("key_id", sa.String(40), nullable=True),
    sa.Column("reason", sa.String(20), nullable=False),
    sa.Column("at", sa.BigInteger, nullable=False),
    sa.Index("ix_auth_invalidations_at", "at"),
)
"""Revoked keys and suspended or deleted tenants, read by every node sharing the database
(no foreign key: a deleted tenant's signal outlives it)."""

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.id"), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("prefix", sa.String(32), nullable=False, unique=True),
    sa.Column("key_hash", sa.String(64), nullable=False),
    sa.Column("role", sa.String(20), nullable=False, server_default="admin"),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("revoked_at", sa.BigInteger, nullable=True),
    sa.Column("scopes", sa.String(100), nullable=False, server_default="admin"),
    sa.Column("sessions", JsonColumn, nullable=True),
    sa.Column("expires_at", sa.BigInteger, nullable=True),
    sa.Column("last_used_at", sa.BigInteger, nullable=True),
    sa.Index("ix_api_keys_tenant", "tenant_id", "created_at"),
)

sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.id"), primary_key=True),
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("engine", sa.String(32), nullable=False),
    sa.Column("config", JsonColumn, nullable=False),
    sa.Column("metadata", JsonColumn, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("status_reason", sa.Text, nullable=True),
    sa.Column("desired", sa.String(10), nullable=False, server_default="running"),
    sa.Column("me", JsonColumn, nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
)

messages = sa.Table(
    "messages",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.id"), nullable=False),
    sa.Column("session", sa.String(64), nullable=False),
    sa.Column("direction", sa.String(3), nullable=False),
    sa.Column("chat_id", sa.String(128), nullable=False),
    sa.Column("sender", sa.String(128), nullable=False),
    sa.Column("recipient", sa.String(128), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("text", sa.Text, nullable=True),
    sa.Column("status", sa.String(12), nullable=False),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("engine_message_id", sa.String(200), nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
    sa.Column("content", JsonColumn, nullable=True),
    sa.Column("media_id", sa.String(40), nullable=True),
    sa.Column("search_text", sa.Text, nullable=True),
    sa.Column("request_id", sa.String(64), nullable=True),
    sa.Index("ix_messages_history", "tenant_id", "session", "id"),
    sa.Index("ix_messages_chat", "tenant_id", "session", "chat_id", "id"),
    sa.Index("ix_messages_time", "tenant_id", "session", "created_at", "id"),
    sa.Index("ix_messages_outbox", "tenant_id", "session", "status", "id"),
    sa.Index("ix_messages_engine_id", "tenant_id", "session", "engine_message_id"),
    sa.Index("ix_messages_media", "tenant_id", "media_id"),
)
"""``search_text``: the folded words of ``text`` (``zapgate.messages.search``), what ``q=``
searches; indexed outside this metadata (migration 0014): SQLite's ``messages_fts`` (FTS5, by
rowid) and PostgreSQL's generated ``search_vector`` column. ``request_id``: the ``X-Request-Id``
of the request that queued an outbound message, carried by its later events."""

media = sa.Table(
    "media",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.id"), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("mime_type", sa.String(100), nullable=False),
    sa.Column("filename", sa.String(255), nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.UniqueConstraint("tenant_id", "sha256", name="uq_media_tenant_sha256"),
    sa.Index("ix_media_tenant_created", "tenant_id", "created_at"),
)

chats = sa.Table(
    "chats",
    metadata,
    sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.id"), primary_key=True),
    sa.Column("session", sa.String(64), primary_key=True),
    sa.Column("chat_id", sa.String(128), primary_key=True),
    sa.Column("last_message_id", sa.String(40), nullable=False),
    sa.Column("unread", sa.Integer, nullable=False, server_default="0"),
    sa.Column("read_up_to", sa.String(40), nullable=True),
    sa.Column("read_at", sa.BigInteger, nullable=True),
    sa.Column("phone", sa.String(32), nullable=True),
    sa.Index("ix_chats_activity", "tenant_id", "session", "last_message_id"),
)
"""Each chat of a session's stored history: its newest message (ids sort by time, so the list
seeks ``ix_chats_activity``), the inbound messages after its read mark, and (a LID chat) the
phone number last seen with it. Written with the messages, in their transaction."""

server_secrets = sa.Table(
    "server_secrets",
    metadata,
    sa.Column("name", sa.String(40), primary_key=True),
    sa.Column("value", sa.String(200), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.id"), nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("session", sa.String(64), nullable=True),
    sa.Column("type", sa.String(64), nullable=False),
    sa.Column("payload", JsonColumn, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("actor", sa.String(200), nullable=True),
    sa.Column("request_id", sa.String(64), nullable=True),
    sa.Column("channel", sa.String(16), nullable=True),
    sa.UniqueConstraint("tenant_id", "seq", name="uq_events_tenant_seq"),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("at", sa.BigInteger, nullable=False),
    sa.Column("actor", sa.String(200), nullable=True),
    sa.Column("action", sa.String(300), nullable=False),
    sa.Column("target", sa.String(300), nullable=True),
    sa.Column("result", sa.String(10), nullable=False),
    sa.Column("status", sa.Integer, nullable=True),
    sa.Column("address", sa.String(64), nullable=True),
    sa.Column("detail", JsonColumn, nullable=True),
    sa.Index("ix_audit_log_tenant", "tenant_id", "id"),
    sa.Index("ix_audit_log_actor", "tenant_id", "actor", "id"),
    sa.Index("ix_audit_log_action", "tenant_id", "action", "id"),
    sa.Index("ix_audit_log_result", "tenant_id", "result", "id"),
)
"""Append-only; ids sort by time (``at`` is the id's time), so pages and time windows seek the
indexes. No foreign key: failed authentications are kept in the operator's tenant, and an entry
may name a tenant that no longer exists."""

idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.id"), primary_key=True),
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("response_status", sa.Integer, nullable=False),
    sa.Column("response_body", JsonColumn, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("expires_at", sa.BigInteger, nullable=False),
    sa.Index("ix_idempotency_expiry", "expires_at"),
)

idempotency_claims = sa.Table(
    "idempotency_claims",
    metadata,
    sa.Column("tenant_id", sa.String(64), primary_key=True),
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("claim_id", sa.String(40), nullable=False),
    sa.Column("expires_at", sa.BigInteger, nullable=False),
)
"""Cluster mode: the Idempotency-Keys some node's request is using now (deleted by the write
that stores its answer, or when it ends), and until when the claim holds if its node dies."""

webhooks = sa.Table(
    "webhooks",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.id"), nullable=False),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("event_types", JsonColumn, nullable=False),
    sa.Column("sessions", JsonColumn, nullable=False),
    sa.Column("headers", JsonColumn, nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("secret", sa.String(200), nullable=False),
    sa.Column("previous_secret", sa.String(200), nullable=True),
    sa.Column("previous_secret_until", sa.BigInteger, nullable=True),
    sa.Column("cursor_seq", sa.BigInteger, nullable=False),
    sa.Column("consecutive_failures", sa.Integer, nullable=False, server_default="0"),
    sa.Column("disabled_reason", sa.Text, nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False, server_default="webhook"),
    sa.Column("config", JsonColumn, nullable=True),
    sa.Index("ix_webhooks_tenant", "tenant_id", "id"),
)
"""Subscriptions to the event log: webhooks, sinks (brokers) and session integrations
(``kind``); ``config`` holds a non-webhook kind's settings, its secrets sealed."""

webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.id"), nullable=False),
    sa.Column("webhook_id", sa.String(40), nullable=False),
    sa.Column("event_id", sa.String(40), nullable=False),
    sa.Column("event_seq", sa.BigInteger, nullable=False),
    sa.Column("session", sa.String(64), nullable=True),
    sa.Column("status", sa.String(12), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", sa.BigInteger, nullable=False),
    sa.Column("last_status_code", sa.Integer, nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
    sa.Column("request_id", sa.String(64), nullable=True),
    sa.Column("lane", sa.String(200), nullable=True),
    # the ordered lane it is sent in, when not its session's (a bot's: its chat's)
    sa.Index("ix_deliveries_queue", "webhook_id", "status", "next_attempt_at"),
    sa.Index("ix_deliveries_list", "tenant_id", "webhook_id", "id"),
)

bot_pauses = sa.Table(
    "bot_pauses",
    metadata,
    sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.id"), primary_key=True),
    sa.Column("session", sa.String(64), primary_key=True),
    sa.Column("chat", sa.String(128), primary_key=True),
    sa.Column("paused_at", sa.BigInteger, nullable=False),
)
"""Chats a human took over from the session's bot (its messages are not sent to the bot)."""
chatwoot_conversations = sa.Table(
    "chatwoot_conversations",
    metadata,
    sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.id"), primary_key=True),
    sa.Column("session", sa.String(64), primary_key=True),
    sa.Column("chat", sa.String(128), primary_key=True),
    sa.Column("contact_id", sa.BigInteger, nullable=False),
    sa.Column("conversation_id", sa.BigInteger, nullable=False),
    sa.Column("source_id", sa.String(200), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Index("ix_chatwoot_conversations_id", "tenant_id", "session", "conversation_id"),
)
"""The Chatwoot contact and conversation of each chat of a session."""
chatwoot_messages = sa.Table(
    "chatwoot_messages",
    metadata,
    sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.id"), primary_key=True),
    sa.Column("message_id", sa.String(40), primary_key=True),
    sa.Column("session", sa.String(64), nullable=False),
    sa.Column("conversation_id", sa.BigInteger, nullable=False),
    sa.Column("chatwoot_id", sa.BigInteger, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("part", sa.SmallInteger, nullable=False, server_default="0"),
    sa.Index("ix_chatwoot_messages_twin", "tenant_id", "chatwoot_id"),
)
"""A zapgate message and its Chatwoot twin (an agent's reply, or a message posted there);
``part``: which message of an agent's reply with several files (its statuses show from 0)."""
fallbacks = sa.Table(
    "fallbacks",
    metadata,
    sa.Column("message_id", sa.String(40), primary_key=True),
    sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.id"), nullable=False),
    sa.Column("sms_session", sa.String(64), nullable=False),
    sa.Column("due_at", sa.BigInteger, nullable=False),
    sa.Column("status", sa.String(12), nullable=False),
    sa.Column("sms_id", sa.String(40), nullable=True),
    sa.Index("ix_fallbacks_due", "status", "due_at"),
)
"""WhatsApp messages with an SMS fallback: ``pending`` until it goes (``sent``, with the SMS's
id) or is not needed (``skipped``: delivered in time)."""

webhook_attempts = sa.Table(
    "webhook_attempts",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.id"), nullable=False),
    sa.Column("delivery_id", sa.String(40), nullable=False),
    sa.Column("attempted_at", sa.BigInteger, nullable=False),
    sa.Column("status_code", sa.Integer, nullable=True),
    sa.Column("duration_ms", sa.Integer, nullable=False),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("response_excerpt", sa.Text, nullable=True),
    sa.Index("ix_attempts_delivery", "delivery_id", "attempted_at"),
    sa.Index("ix_attempts_tenant", "tenant_id", "id"),
)

tenant_limits = sa.Table(
    "tenant_limits",
    metadata,
    sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.id"), primary_key=True),
    sa.Column("rate_per_key", sa.Float, nullable=True),
    sa.Column("burst", sa.Integer, nullable=True),
    sa.Column("concurrent_per_key", sa.Integer, nullable=True),
    sa.Column("sessions", sa.Integer, nullable=True),
    sa.Column("webhooks", sa.Integer, nullable=True),
    sa.Column("queued_per_session", sa.Integer, nullable=True),
    sa.Column("streams_per_key", sa.Integer, nullable=True),
    sa.Column("media_retention_days", sa.Integer, nullable=True),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
    sa.Column("sinks", sa.Integer, nullable=True),
)

nodes = sa.Table(
    "nodes",
    metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("incarnation", sa.String(40), nullable=False),
    sa.Column("started_at", sa.BigInteger, nullable=False),
    sa.Column("last_seen", sa.BigInteger, nullable=False),
    sa.Column("sessions", sa.Integer, nullable=False, server_default="0"),
)
"""The zapgate processes sharing this database, each with the heartbeat it last beat (no
tenant: a node serves them all)."""

session_leases = sa.Table(
    "session_leases",
    metadata,
    sa.Column("tenant_id", sa.String(64), primary_key=True),
    sa.Column("session", sa.String(64), primary_key=True),
    sa.Column("owner", sa.String(100), nullable=False),
    sa.Column("token", sa.BigInteger, nullable=False),
    sa.Column("expires_at", sa.BigInteger, nullable=False),
    sa.Index("ix_session_leases_owner", "owner", "expires_at"),
)
"""Cluster mode: the node that runs each session, until when, and the fencing token it got (one
more at each new owner)."""

cluster_roles = sa.Table(
    "cluster_roles",
    metadata,
    sa.Column("role", sa.String(40), primary_key=True),
    sa.Column("owner", sa.String(100), nullable=False),
    sa.Column("token", sa.BigInteger, nullable=False),
    sa.Column("expires_at", sa.BigInteger, nullable=False),
)
"""Cluster mode: the node doing a role for the whole cluster (the webhook dispatcher), until
when, and its fencing token (one more at each new holder)."""


def tenant_owned() -> list[sa.Table]:
    """Every table holding a tenant's rows, children before parents (the order to delete them
    in); not ``tenants`` itself, nor the signals that must outlive a deleted tenant."""
    return [
        table
        for table in reversed(metadata.sorted_tables)
        if "tenant_id" in table.c and table is not auth_invalidations
    ]
