"""Chats of a session's stored history: newest activity, unread counts, read marks."""
