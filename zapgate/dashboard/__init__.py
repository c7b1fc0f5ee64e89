"""The dashboard: one page and its assets, served by zapgate itself (no CDN, no build step)."""
