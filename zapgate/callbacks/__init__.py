"""Callbacks from providers (Meta's Cloud API): verified by their own signatures, not API keys."""
