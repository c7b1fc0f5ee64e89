"""Private files: the data directory holds secrets (key hashes, webhook secrets, messages, logins),
so what zapgate creates there is 0700 (folders) and 0600 (files), whatever the umask."""

from __future__ import annotations

import os
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path, within: Path | None = None) -> Path:
    """Create ``path`` (and missing parents) as 0700; with ``within``, also tighten every folder
    from ``within`` down to ``path`` (they all belong to zapgate)."""
    path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    path.chmod(DIR_MODE)
    if within is not None:
        top = within.resolve()
        current = path.resolve()
        while current != top and top in current.parents:
            current = current.parent
            current.chmod(DIR_MODE)
    return path


def private_file(path: Path) -> Path:
    """Create ``path`` if missing, and make it 0600."""
    descriptor = os.open(path, os.O_CREAT | os.O_WRONLY, FILE_MODE)
    os.close(descriptor)
    path.chmod(FILE_MODE)
    return path
