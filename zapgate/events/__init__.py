"""The event log: the source of truth every consumer reads from."""
