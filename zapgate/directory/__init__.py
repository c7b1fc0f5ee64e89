"""Contacts, numbers, LIDs and groups, as the session's engine knows them."""
