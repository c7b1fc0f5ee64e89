"""The official WhatsApp Business Cloud API engine (Meta's Graph API)."""
