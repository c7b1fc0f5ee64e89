"""Find processes by command line (to count Chromium left behind)."""

from __future__ import annotations

from pathlib import Path


def pids_mentioning(*needles: str) -> list[int]:
    """Live processes whose command line contains every needle."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().split(") ", 1)[1][:1]
        except OSError:
            continue
        if state != "Z" and all(needle in cmdline for needle in needles):
            found.append(int(entry.name))
    return found


def chromium_under(directory: Path) -> list[int]:
    """Chromium processes using a profile somewhere under ``directory``."""
    return pids_mentioning("chromium", str(directory))
