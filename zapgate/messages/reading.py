"""Reading a send's body: JSON of any message type, or a multipart form with the file."""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import TypeAdapter, ValidationError
from starlette.datastructures import UploadFile
from starlette.requests import Request

from zapgate.errors import InvalidInput
from zapgate.messages.commands import Upload
from zapgate.messages.schemas import SendImage, SendMessage
from zapgate.validation import located

SEND = TypeAdapter(SendMessage)
INLINE_VALIDATE_BYTES = 262_144
FORM_FIELDS = ("to", "type", "caption", "reply_to", "voice", "filename", "mime_type", "text")
_PLACEHOLDER = "AAAA"
"""The ``media.base64`` a multipart send is checked with: its file is in the ``file`` part."""


def _schemas() -> dict[str, Any]:
    return SEND.json_schema(ref_template="#/components/schemas/{model}")


def _field(name: str) -> dict[str, Any]:
    """A form field's schema: the JSON image send's, without its ``null`` branch."""
    schema = dict(SendImage.model_json_schema()["properties"][name])
    branches = [b for b in schema.pop("anyOf", []) if b.get("type") != "null"]
    if branches:
        schema.update(branches[0])
    schema.pop("default", None)
    return schema


SEND_REQUEST_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/SendMessage"}},
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["to", "type", "file"],
                "additionalProperties": False,
                "properties": {
                    "to": _field("to"),
                    "type": {
                        "type": "string",
                        "enum": ["image", "video", "audio", "document", "sticker"],
                    },
                    "caption": {
                        **_field("caption"),
                        "description": "empty: none; not shown on stickers",
                    },
                    "reply_to": {**_field("reply_to"), "description": "empty: none"},
                    "voice": {"type": "boolean", "description": "audio only: a voice note"},
                    "filename": {"type": "string", "maxLength": 255},
                    "mime_type": {"type": "string", "maxLength": 127},
                    "file": {"type": "string", "format": "binary"},
                },
            }
        },
    },
}


def components() -> dict[str, Any]:
    """The schemas ``SEND_REQUEST_BODY`` refers to, for the OpenAPI document's components."""
    schema = _schemas()
    found: dict[str, Any] = dict(schema.pop("$defs", {}))
    found["SendMessage"] = schema
    return found


async def read_send(request: Request) -> tuple[Any, Upload | None]:
    """The send in ``request`` (validated) and its uploaded file, if multipart."""
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if kind == "multipart/form-data":
        await request.body()  # read (within the body limit) and kept: Idempotency-Key hashes it
        return await _read_form(request)
    if kind not in ("", "application/json") and not kind.endswith("+json"):
        detail = "send JSON (application/json) or a form (multipart/form-data)"
        raise InvalidInput([{"loc": ["body"], "msg": detail, "type": "content_type"}])
    raw = await request.body()
    try:
        if len(raw) > INLINE_VALIDATE_BYTES:  # a file in base64: its pattern check takes a while
            return await asyncio.to_thread(SEND.validate_json, raw), None
        return SEND.validate_json(raw or b"null"), None
    except ValidationError as error:
        raise located(error, "body") from None


async def _read_form(request: Request) -> tuple[Any, Upload | None]:
    try:
        form = await request.form(max_files=1, max_fields=len(FORM_FIELDS) + 1)
    except Exception as error:  # malformed multipart, too many parts
        raise InvalidInput(f"the form could not be read: {error}") from None
    values: dict[str, Any] = {}
    upload: Upload | None = None
    for name, value in form.multi_items():
        if isinstance(value, UploadFile):
            if name != "file":
                raise InvalidInput(f"the file goes in the part named file, not {name!r}")
            upload = Upload(await value.read(), value.filename, value.content_type)
        elif name in FORM_FIELDS:
            if value != "" or name in ("to", "type", "text"):  # an empty field: not given
                values[name] = value
        else:
            raise InvalidInput(f"unknown form field {name!r}; known: {', '.join(FORM_FIELDS)}")
    if values.get("type") == "sticker":
        values.pop("caption", None)  # stickers have none; a form may still send the field
    voice = values.pop("voice", None)
    if voice is not None and values.get("type") == "audio":  # a voice note, or an audio file
        values["voice"] = voice.strip().lower() in ("true", "1", "yes", "on")
    filename, mime_type = values.pop("filename", None), values.pop("mime_type", None)
    if values.get("type") in ("image", "video", "audio", "document", "sticker"):
        if upload is None:
            raise InvalidInput("a multipart send of a file needs the part file")
        values["media"] = {"base64": _PLACEHOLDER, "filename": filename, "mime_type": mime_type}
    elif upload is not None:
        raise InvalidInput(f"a {values.get('type', 'text')} message takes no file")
    try:
        return SEND.validate_python(values), upload
    except ValidationError as error:
        raise located(error, "body") from None
