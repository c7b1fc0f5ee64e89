"""Helpers of the audit tests: read a log, make keys, pick entries apart."""

from __future__ import annotations

from typing import Any

import httpx

BAD_KEY = {"Authorization": "Bearer zg_nosuchkey00001_" + "x" * 32}


async def audit_log(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    """Every entry the client's tenant may read (all pages), newest first."""
    entries: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, "limit": 500, **({"cursor": cursor} if cursor else {})}
        response = await client.get("/api/v1/audit", params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        entries += page["data"]
        cursor = page["next_cursor"]
        if cursor is None:
            return entries


async def own_key_id(client: httpx.AsyncClient) -> str:
    """The id of the client's key (the configured one, ``tests.conftest.ADMIN_KEY``)."""
    keys = (await client.get("/api/v1/keys")).json()
    return str(next(key["id"] for key in keys if key["name"] == "ZAPGATE_API_KEY"))


def brief(entries: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """(actor, action, target, result, status) of each entry."""
    return [(e["actor"], e["action"], e["target"], e["result"], e["status"]) for e in entries]


async def new_key(admin: httpx.AsyncClient, *scopes: str) -> tuple[str, str]:
    """(id, plaintext) of a new key of the admin's tenant with ``scopes``."""
    created = await admin.post("/api/v1/keys", json={"name": "audited", "scopes": list(scopes)})
    assert created.status_code == 201, created.text
    return str(created.json()["id"]), str(created.json()["key"])


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
