"""The Telegram engine: a session is one bot of the Telegram Bot API."""
