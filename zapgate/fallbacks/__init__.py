"""SMS fallback of WhatsApp texts: recorded with the message, sent once when due."""
