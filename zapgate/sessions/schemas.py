"""Request and response bodies of the sessions API."""

from __future__ import annotations

from datetime import datetime
from functools import reduce
from operator import or_
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    StrictStr,
    Tag,
    create_model,
)

from zapgate.messages.schemas import (
    MESSAGE_ID,
    SEND_MODELS,
    _type_of,
    phone_field,
)
from zapgate.names import SESSION_NAME


class SessionOut(BaseModel):
    """A session and its state."""

    name: str
    engine: str
    channel: Literal["whatsapp", "telegram", "sms"] = Field(
        description="what its engine talks over: the addresses it reaches"
    )
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

    phone: StrictStr = phone_field(lid=False)


class PairingCodeOut(BaseModel):
    """The code to type in WhatsApp > Linked devices > Link with phone number."""

    code: str


class SimulatedInbound(BaseModel):
    """A message the simulated phone receives."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: StrictStr = phone_field(alias="from")
    text: StrictStr = Field(min_length=1, max_length=65_536, examples=["Oi!"])


def _received(model: type[BaseModel]) -> type[BaseModel]:
    """The simulated inbound form of a send model: ``from`` in place of ``to``."""
    fields: dict[str, Any] = {
        name: (field.annotation, field)
        for name, field in model.model_fields.items()
        if name != "to"
    }
    made: type[BaseModel] = create_model(
        "Simulated" + model.__name__.removeprefix("Send"),
        __config__=ConfigDict(extra="forbid", populate_by_name=True),
        __doc__=f"The simulated phone receives: {(model.__doc__ or '').strip()}",
        from_=(StrictStr, phone_field(alias="from")),
        **fields,
    )
    return made


SIMULATED_MODELS = {kind: _received(model) for kind, model in SEND_MODELS.items()}
if TYPE_CHECKING:
    SimulatedRich = Any
else:
    SimulatedRich = Annotated[
        reduce(or_, (Annotated[model, Tag(kind)] for kind, model in SIMULATED_MODELS.items())),
        Discriminator(
            _type_of,
            custom_error_type="invalid_type",
            custom_error_message="type must be one of " + ", ".join(SIMULATED_MODELS),
        ),
    ]
"""A message of any type the simulated phone receives: a send's shape with ``from``."""


class SimulatedCall(BaseModel):
    """A call the simulated phone gets."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: StrictStr = phone_field(alias="from")
    video: StrictBool = False


class CallOut(BaseModel):
    """A simulated call: what is done with it shows in its ``call.received`` event."""

    id: str
    from_: str = Field(alias="from")
    video: bool


class SimulatedEdit(BaseModel):
    """The sender of a received message edits it."""

    model_config = ConfigDict(extra="forbid")

    message_id: StrictStr = Field(max_length=40, pattern=MESSAGE_ID)
    text: StrictStr = Field(min_length=1, max_length=65_536)


class SimulatedRevoke(BaseModel):
    """The sender of a received message deletes it for everyone."""

    model_config = ConfigDict(extra="forbid")

    message_id: StrictStr = Field(max_length=40, pattern=MESSAGE_ID)
