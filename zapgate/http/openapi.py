"""OpenAPI pieces the routes share: operation ids, links between operations, extra content types.

Operation ids are the route functions' names (``get_session``), so links can name them and
generated clients get readable method names.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute

SESSION_OPERATIONS = (
    "get_session",
    "update_session",
    "delete_session",
    "start_session",
    "stop_session",
    "restart_session",
    "logout_session",
    "get_qr",
    "pair",
    "me",
    "simulate_scan",
    "simulate_inbound",
    "send_message",
    "list_messages",
)
MESSAGE_OPERATIONS = ("get_message", "edit_message", "delete_message")
WEBHOOK_OPERATIONS = (
    "get_webhook",
    "update_webhook",
    "delete_webhook",
    "rotate_secret",
    "list_deliveries",
    "replay",
)
SINK_OPERATIONS = (
    "get_sink",
    "update_sink",
    "delete_sink",
    "list_sink_deliveries",
    "replay_sink",
)


def operation_id(route: APIRoute) -> str:
    """The route function's name."""
    return route.name


def links(parameter: str, expression: str, operations: tuple[str, ...]) -> dict[str, Any]:
    """Links passing ``expression`` (a runtime expression) as ``parameter`` to ``operations``."""
    return {
        _link_name(operation): {"operationId": operation, "parameters": {parameter: expression}}
        for operation in operations
    }


def _link_name(operation: str) -> str:
    return "".join(part.capitalize() for part in operation.split("_"))


def success(status: int, description: str, **extra: Any) -> dict[int | str, dict[str, Any]]:
    """The success response's description, with links or other content types in ``extra``."""
    return {status: {"description": description, **extra}}


def also_serves(media_type: str, schema: dict[str, Any]) -> dict[str, Any]:
    """A second content type of a success response (next to the route's JSON)."""
    return {"content": {media_type: {"schema": schema}}}


def install(api: FastAPI, schemas: dict[str, Any] | None = None) -> None:
    """Publish FastAPI's schema with parameters that are never ``null`` (absent is not null),
    and ``schemas`` the routes refer to without FastAPI knowing (bodies they read themselves).
    """
    build = api.openapi

    def openapi() -> dict[str, Any]:
        if api.openapi_schema is None:
            document = build()
            _never_null_parameters(document)
            known = document.setdefault("components", {}).setdefault("schemas", {})
            for name, schema in (schemas or {}).items():
                known.setdefault(name, schema)
        return build()

    api.openapi = openapi  # type: ignore[method-assign]


def _never_null_parameters(schema: dict[str, Any]) -> None:
    for item in schema.get("paths", {}).values():
        for operation in item.values():
            for parameter in operation.get("parameters", []):
                without_null(parameter.get("schema", {}))


def without_null(schema: dict[str, Any]) -> None:
    """Drop the ``null`` branch (and ``null`` default) of an optional value's schema."""
    if schema.get("default", "") is None:
        del schema["default"]
    kept = [branch for branch in schema.pop("anyOf", []) if branch != {"type": "null"}]
    if len(kept) == 1:
        schema.update(kept[0])
    elif kept:
        schema["anyOf"] = kept
