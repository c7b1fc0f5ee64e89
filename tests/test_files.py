"""The data directory is private: folders 0700, files 0600, whatever the umask."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import AUTH, make_settings, serve
from zapgate.files import private_dir
from zapgate.services import build_services


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(params=[0o000, 0o022])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    previous = os.umask(request.param)
    try:
        yield int(request.param)
    finally:
        os.umask(previous)


async def test_the_database_and_its_folder_are_private(tmp_path: Path, umask: int) -> None:
    data = tmp_path / "data"
    async with (
        serve(build_services(make_settings(data))) as server,
        httpx.AsyncClient(base_url=server.url, headers=AUTH) as api,
    ):
        answer = await api.post(
            "/api/v1/webhooks", json={"url": "https://example.com/hook", "events": []}
        )
        assert answer.status_code == 201
        assert mode(data) == 0o700
        files = sorted(data.glob("zapgate.db*"))
        assert [f.name for f in files][:1] == ["zapgate.db"]
        assert any(f.name.endswith("-wal") for f in files), files
        for found in files:
            assert mode(found) == 0o600, (found, oct(mode(found)))


def test_an_existing_world_readable_install_is_tightened(tmp_path: Path, umask: int) -> None:
    data = tmp_path / "old"
    data.mkdir(mode=0o755)
    (data / "zapgate.db").write_bytes(b"")
    (data / "zapgate.db").chmod(0o644)
    from zapgate.db.database import create_engine

    create_engine(make_settings(data))
    assert mode(data) == 0o700
    assert mode(data / "zapgate.db") == 0o600


def test_login_folders_are_private_all_the_way_down(tmp_path: Path, umask: int) -> None:
    folder = tmp_path / "wppconnect" / "acme" / "sales"
    private_dir(folder, within=tmp_path)
    for level in (folder, folder.parent, folder.parent.parent):
        assert mode(level) == 0o700, level


def test_a_database_in_a_folder_zapgate_did_not_make_leaves_that_folder_alone(
    tmp_path: Path, umask: int
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)  # like /tmp: tightening it would break everyone else
    from zapgate.db.database import create_engine

    create_engine(
        make_settings(tmp_path / "data", database_url=f"sqlite+aiosqlite:///{shared}/z.db")
    )
    assert mode(shared) == 0o1777
    assert mode(shared / "z.db") == 0o600
    assert mode(tmp_path / "data") == 0o700
