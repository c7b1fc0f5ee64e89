"""The SMS engine: a number (or messaging service) on a Twilio-compatible Messages REST API."""
