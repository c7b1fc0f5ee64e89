"""What a key is, and its tenant at a glance: the dashboard's first two reads."""
