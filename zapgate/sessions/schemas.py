"""Request and response bodies of the sessions API."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    model_validator,
)

from zapgate.messages.schemas import ContactCard, MediaSource, message_ref, phone_field
from zapgate.names import SESSION_NAME


class SessionOut(BaseModel):
    """A session and its state."""

    name: str
    engine: str
    capabilities: list[str] = Field(
        description="the message types its engine can send (text, image, video, audio, "
        "document, sticker, location, contact, reaction)"
    )
    status: str = Field(
        description="STOPPED, STARTING, SCAN_QR_CODE, WORKING, DISCONNECTED, FAILED"
    )
    reason: str | None = Field(description="why the session is FAILED, DISCONNECTED or STOPPED")
    health: str | None = Field(description="ok or stale while running on this node; else null")
    node: str | None = Field(
        description="the node that runs it now (ZAPGATE_NODE_NAME; see GET /api/v1/nodes), or "
        "null when it runs nowhere"
    )
    engine_stats: dict[str, int] | None = Field(
        description="what its engine counted since it started on that node; the simulator: "
        '{"sends": how many sends it performed} (a message sent twice shows); else null'
    )
    me: dict[str, Any] | None = Field(description="the connected account, once paired")
    config: dict[str, Any]
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class CreateSession(BaseModel):
    """A new session."""

    model_config = ConfigDict(extra="forbid")

    name: StrictStr = Field(pattern=SESSION_NAME, examples=["sales"])
    engine: StrictStr = Field(default="simulator", max_length=32, examples=["simulator"])
    config: dict[str, Any] = Field(default_factory=dict, description="engine-specific settings")
    metadata: dict[str, Any] = Field(default_factory=dict, description="yours, stored as given")
    start: StrictBool = Field(default=True, description="start it right away")


class UpdateSession(BaseModel):
    """Changes to a session; a new config applies at the next (re)start."""

    model_config = ConfigDict(extra="forbid")

    config: dict[str, Any] | None = Field(
        default=None, description="the engine's settings; absent or null: unchanged"
    )
    metadata: dict[str, Any] | None = Field(
        default=None, description="replaces the metadata; absent or null: unchanged"
    )


class QrOut(BaseModel):
    """The QR to scan with WhatsApp on the phone."""

    qr: str = Field(description="the raw QR content")
    image: str = Field(description="the QR as a data:image/png;base64 URI")


class PairRequest(BaseModel):
    """Pair with a code typed on the phone instead of scanning."""

    model_config = ConfigDict(extra="forbid")

    phone: StrictStr = phone_field()


class PairingCodeOut(BaseModel):
    """The code to type in WhatsApp > Linked devices > Link with phone number."""

    code: str


class SimulatedInbound(BaseModel):
    """A message the simulated phone receives."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: StrictStr = phone_field(alias="from")
    text: StrictStr = Field(min_length=1, max_length=65_536, examples=["Oi!"])


class SimulatedRich(BaseModel):
    """A message of any type the simulated phone receives (a file in ``media.base64``)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: StrictStr = phone_field(alias="from")
    type: Literal[
        "text", "image", "video", "audio", "document", "sticker", "location", "contact", "reaction"
    ] = "text"
    text: StrictStr | None = Field(default=None, min_length=1, max_length=65_536)
    caption: StrictStr | None = Field(default=None, min_length=1, max_length=4096)
    media: MediaSource | None = None
    voice: StrictBool = False
    latitude: StrictFloat | StrictInt | None = Field(default=None, ge=-90, le=90)
    longitude: StrictFloat | StrictInt | None = Field(default=None, ge=-180, le=180)
    name: StrictStr | None = Field(default=None, max_length=256)
    address: StrictStr | None = Field(default=None, max_length=512)
    contact: ContactCard | None = None
    message_id: StrictStr | None = message_ref("reaction: the message reacted to")
    emoji: StrictStr | None = Field(default=None, max_length=32)
    reply_to: StrictStr | None = message_ref("the message this one quotes")

    @model_validator(mode="after")
    def _complete(self) -> SimulatedRich:
        needs = {
            "text": self.text is not None,
            "location": self.latitude is not None and self.longitude is not None,
            "contact": self.contact is not None,
            "reaction": self.message_id is not None and self.emoji is not None,
        }
        if not needs.get(self.type, self.media is not None and self.media.base64 is not None):
            raise ValueError(f"a simulated {self.type} message misses its content")
        return self
