"""Engines: how zapgate talks to WhatsApp. They know nothing of HTTP, Socket.IO or the database."""
