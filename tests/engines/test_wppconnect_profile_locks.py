"""A session's Chromium profile left locked by a browser that died with its node (a host name
and pid in ``SingletonLock``) is unlocked before the session starts again, here or on another
node (cluster mode: the login folder is on a shared volume)."""

from __future__ import annotations

import os
from pathlib import Path

from zapgate.engines.wppconnect.engine import _clear_profile_locks


def test_the_locks_of_a_dead_browser_are_removed_and_the_login_kept(tmp_path: Path) -> None:
    profile = tmp_path / "profile"
    (profile / "Default").mkdir(parents=True)
    (profile / "Default" / "Cookies").write_bytes(b"login")
    os.symlink("dead-host-4242", profile / "SingletonLock")  # dangling, as Chromium leaves it
    (profile / "SingletonCookie").write_text("1")
    (profile / "SingletonSocket").write_text("")

    _clear_profile_locks(profile)

    assert sorted(p.name for p in profile.iterdir()) == ["Default"]
    assert (profile / "Default" / "Cookies").read_bytes() == b"login"


def test_a_missing_profile_is_left_alone(tmp_path: Path) -> None:
    _clear_profile_locks(tmp_path / "absent")
    assert not (tmp_path / "absent").exists()
