"""A session mirrored into a Chatwoot API-channel inbox: the Application API client."""
