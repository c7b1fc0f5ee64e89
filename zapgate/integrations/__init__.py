"""Session integrations: a session mirrored into Chatwoot, or its chats answered by a bot."""
