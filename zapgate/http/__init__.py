"""The web edge: error rendering, limits, authentication dependency."""
