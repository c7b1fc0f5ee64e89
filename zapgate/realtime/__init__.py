"""Real time: Socket.IO fan-out of the event log."""
