"""What the WPPConnect engine needs on this machine, and whether it is there."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

BRIDGE_DIR = Path(__file__).parent / "bridge"
BRIDGE_SCRIPT = BRIDGE_DIR / "bridge.mjs"
LIBRARY = BRIDGE_DIR / "node_modules" / "@wppconnect-team" / "wppconnect" / "package.json"


@dataclass(frozen=True, slots=True)
class Requirement:
    """One thing the engine needs."""

    name: str
    present: bool
    detail: str
    fix: str


@dataclass(frozen=True, slots=True)
class WppRuntime:
    """Where the engine's parts are."""

    node: str = "node"
    chromium: str = "/usr/bin/chromium"

    def requirements(self) -> list[Requirement]:
        """Each requirement and whether it is met."""
        node = shutil.which(self.node)
        chromium_ok = Path(self.chromium).is_file() and os.access(self.chromium, os.X_OK)
        return [
            Requirement(
                "node", node is not None, node or f"{self.node!r} not on PATH", "install Node.js 20"
            ),
            Requirement(
                "@wppconnect-team/wppconnect",
                LIBRARY.is_file(),
                str(LIBRARY.parent) if LIBRARY.is_file() else "bridge packages not installed",
                "make wppconnect",
            ),
            Requirement(
                "chromium",
                chromium_ok,
                self.chromium if chromium_ok else f"no executable at {self.chromium}",
                "apt-get install -y chromium",
            ),
        ]

    def missing(self) -> str | None:
        """None when everything is present, else what is missing and how to fix it."""
        gaps = [f"{r.name} ({r.detail}; {r.fix})" for r in self.requirements() if not r.present]
        return "missing: " + ", ".join(gaps) if gaps else None
