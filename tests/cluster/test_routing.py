"""Cluster mode: lifecycle and simulator calls through any node act on the node that runs the
session (asked through Redis), and answer what that node answers."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from tests.cluster.test_leases import nodes, until
from tests.conftest import AUTH, RunningServer

KEY = ("default", "shop")


def runs_on(cluster: list[RunningServer]) -> list[RunningServer]:
    return [n for n in cluster if KEY in n.services.sessions.running_keys()]


async def test_calls_through_a_node_that_does_not_run_the_session_act_on_its_owner(
    tmp_path: Path,
) -> None:
    async with nodes(tmp_path, 30.0) as cluster:
        async with httpx.AsyncClient(base_url=cluster[0].url, headers=AUTH, timeout=10) as api:
            manual = {"pairing": "manual"}
            made = await api.post("/api/v1/sessions", json={"name": "shop", "config": manual})
            assert made.status_code == 201, made.text
        await until(lambda: len(runs_on(cluster)) == 1, seconds=5)
        (owner,) = runs_on(cluster)
        other = next(n for n in cluster if n is not owner)
        served = owner.services.control.served if owner.services.control else 0
        async with httpx.AsyncClient(base_url=other.url, headers=AUTH, timeout=10) as api:
            async with asyncio.timeout(5):
                while (qr := await api.get("/api/v1/sessions/shop/qr")).status_code != 200:
                    assert qr.status_code == 409, qr.text  # not showing one yet
                    await asyncio.sleep(0.05)
            assert qr.json()["qr"] == owner.services.sessions.qr(*KEY)
            scanned = await api.post("/api/v1/sessions/shop/simulate/scan")
            assert scanned.status_code == 204, scanned.text
            again = await api.post("/api/v1/sessions/shop/simulate/scan")
            assert again.status_code == 409, "the owner's error, as the owner answers it"
            assert again.json()["error"] == "no_qr_code"

            async def status() -> str:
                return str((await api.get("/api/v1/sessions/shop")).json()["status"])

            async with asyncio.timeout(5):
                while await status() != "WORKING":
                    await asyncio.sleep(0.05)
            inbound = await api.post(
                "/api/v1/sessions/shop/simulate/inbound",
                json={"from": "5511988887777", "text": "oi"},
            )
            assert inbound.status_code == 201, inbound.text
            assert inbound.json()["direction"] == "in"
            sent = await api.post(
                "/api/v1/sessions/shop/messages", json={"to": "5511999999999", "text": "x"}
            )
            assert sent.status_code == 202
            async with asyncio.timeout(5):
                while (await api.get(f"/api/v1/messages/{sent.json()['id']}")).json()[
                    "status"
                ] not in ("sent", "delivered", "read"):
                    await asyncio.sleep(0.05)
            shown = (await api.get("/api/v1/sessions/shop")).json()
            assert shown["node"] == owner.services.settings.node_name
            assert shown["engine_stats"] == {"sends": 1}, "the owner's figures, through any node"
            started = await api.post("/api/v1/sessions/shop/start")
            assert started.status_code == 409, "already running on its owner"
            restarted = await api.post("/api/v1/sessions/shop/restart")
            assert restarted.status_code == 200, restarted.text
            assert runs_on(cluster) == [owner], "restarted where it runs, not moved"
            stopped = await api.post("/api/v1/sessions/shop/stop")
            assert stopped.status_code == 200
            assert stopped.json()["status"] == "STOPPED", "stopped by its owner before the answer"
            assert runs_on(cluster) == []
        assert owner.services.control is not None
        assert owner.services.control.served > served


async def test_a_node_that_stops_hands_sessions_and_roles_over_at_once(tmp_path: Path) -> None:
    """With a 30 s TTL the others look only every 10 s: a node that stops tells them to look
    now, after it left, so they take its sessions and its webhook role within a second."""
    async with nodes(tmp_path, 30.0) as cluster:
        async with httpx.AsyncClient(base_url=cluster[0].url, headers=AUTH, timeout=10) as api:
            assert (await api.post("/api/v1/sessions", json={"name": "shop"})).status_code == 201
        await until(lambda: len(runs_on(cluster)) == 1, seconds=5)
        (owner,) = runs_on(cluster)
        assert owner.services.leases is not None
        await owner.services.leases.stop()
        took = await until(lambda: len(runs_on(cluster)) == 1, seconds=5)
        assert took < 2, f"handed over after {took:.1f} s"
        assert runs_on(cluster) != [owner]

        def role_holders() -> list[RunningServer]:
            return [n for n in cluster if n.services.dispatch_role.holds()]  # type: ignore[union-attr]

        (holder,) = role_holders()
        assert holder.services.dispatch_role is not None
        await holder.services.dispatch_role.stop()
        took = await until(lambda: len(role_holders()) == 1, seconds=5)
        assert took < 2, f"role handed over after {took:.1f} s"
        assert role_holders() != [holder]
