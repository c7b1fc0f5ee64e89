"""Sessions: one WhatsApp account each, driven by an engine."""
