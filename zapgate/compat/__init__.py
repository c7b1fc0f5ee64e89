"""The original contract: ``/whatsapp/*`` routes and the ``message`` socket event."""
