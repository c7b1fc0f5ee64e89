"""Request and response bodies of the messages API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    Tag,
    model_validator,
)

MAX_TEXT = 65_536
_SEPARATOR = r"[\t\n\v\f\r ().\-/]"
PHONE_PATTERN = (
    rf"^{_SEPARATOR}*\+?{_SEPARATOR}*[1-9](?:{_SEPARATOR}*[0-9]){{9,14}}{_SEPARATOR}*"
    r"(?:@c\.us[\t\n\v\f\r ]*)?$"
)
"""What ``zapgate.phone.normalize_number`` accepts, for the schema (it stays the judge, answering
``invalid_phone_number``): 10-15 digits with country code, optional ``+``, spaces, ``().-/``
separators and an ``@c.us`` suffix. With ZAPGATE_DEFAULT_COUNTRY_CODE set, national numbers
are accepted too."""
PHONE_DOC = "digits with country code, e.g. 5511999999999 or +55 (11) 99999-9999"


def phone_field(**extra: Any) -> Any:
    """A phone number field: at most 64 characters, ``PHONE_PATTERN`` in the schema."""
    return Field(
        max_length=64,
        description=PHONE_DOC,
        examples=["5511999999999"],
        json_schema_extra={"pattern": PHONE_PATTERN},
        **extra,
    )


MAX_CAPTION = 4096
MESSAGE_ID = r"^[A-Za-z0-9_]{1,40}$"


def message_ref(description: str) -> Any:
    return Field(
        default=None,
        max_length=40,
        pattern=MESSAGE_ID,
        description=description,
        examples=["msg_01J0000000000000000000000"],
    )


class SendText(BaseModel):
    """A text message to send (``type`` may be left out)."""

    model_config = ConfigDict(extra="forbid")

    to: StrictStr = phone_field()
    type: Literal["text"] = "text"
    text: StrictStr = Field(min_length=1, max_length=MAX_TEXT, examples=["Olá, mundo!"])
    reply_to: StrictStr | None = message_ref("the id of a message of this session to quote")
    link_preview: StrictBool | None = Field(
        default=None, description="show a preview of the first link (default: when there is one)"
    )


class MediaSource(BaseModel):
    """A file: fetched from ``url``, or given in ``base64``. Its type is sniffed from its bytes;
    ``mime_type`` is only a hint (for text files)."""

    model_config = ConfigDict(extra="forbid")

    url: StrictStr | None = Field(
        default=None,
        max_length=2048,
        pattern=r"^[Hh][Tt][Tt][Pp][Ss]?://",
        description="http(s) URL zapgate fetches (public addresses only)",
        examples=["https://example.com/invoice.pdf"],
    )
    base64: StrictStr | None = Field(
        default=None,
        min_length=4,
        description="the file's bytes in base64 (standard alphabet, padded)",
    )
    filename: StrictStr | None = Field(default=None, max_length=255, examples=["invoice.pdf"])
    mime_type: StrictStr | None = Field(default=None, max_length=127, examples=["text/plain"])

    @model_validator(mode="after")
    def _one_source(self) -> MediaSource:
        if (self.url is None) == (self.base64 is None):
            raise ValueError("give exactly one of media.url and media.base64")
        return self


class _MediaSend(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: str

    to: StrictStr = phone_field()
    media: MediaSource
    caption: StrictStr | None = Field(default=None, min_length=1, max_length=MAX_CAPTION)
    reply_to: StrictStr | None = message_ref("the id of a message of this session to quote")


class SendImage(_MediaSend):
    """A picture (JPEG, PNG, WebP or GIF)."""

    type: Literal["image"]


class SendVideo(_MediaSend):
    """A video."""

    type: Literal["video"]


class SendAudio(_MediaSend):
    """An audio file; ``voice`` sends it as a voice note (push-to-talk)."""

    type: Literal["audio"]
    voice: StrictBool = False


class SendDocument(_MediaSend):
    """Any file, shown with its ``media.filename``."""

    type: Literal["document"]


class SendSticker(_MediaSend):
    """A sticker (WebP or PNG)."""

    type: Literal["sticker"]
    caption: None = Field(default=None, description="stickers have no caption")


class SendLocation(BaseModel):
    """A place on the map."""

    model_config = ConfigDict(extra="forbid")

    to: StrictStr = phone_field()
    type: Literal["location"]
    latitude: StrictFloat | StrictInt = Field(ge=-90, le=90, examples=[-23.5505])
    longitude: StrictFloat | StrictInt = Field(ge=-180, le=180, examples=[-46.6333])
    name: StrictStr | None = Field(default=None, max_length=256, examples=["Escritório"])
    address: StrictStr | None = Field(default=None, max_length=512)
    reply_to: StrictStr | None = message_ref("the id of a message of this session to quote")


class ContactCard(BaseModel):
    """A contact card: ``name`` and ``phones`` (a vCard is made of them), or a raw ``vcard``."""

    model_config = ConfigDict(extra="forbid")

    name: StrictStr | None = Field(default=None, min_length=1, max_length=256)
    phones: list[Annotated[StrictStr, Field(min_length=3, max_length=32)]] | None = Field(
        default=None, min_length=1, max_length=10, examples=[["+55 11 99999-9999"]]
    )
    vcard: StrictStr | None = Field(
        default=None,
        max_length=8192,
        pattern=r"^BEGIN:VCARD",
        description="a vCard 3.0 or 4.0 (BEGIN:VCARD ... END:VCARD)",
    )

    @model_validator(mode="after")
    def _card(self) -> ContactCard:
        if self.vcard is None and (self.name is None or not self.phones):
            raise ValueError("give name and phones, or vcard")
        return self


class SendContact(BaseModel):
    """A contact card."""

    model_config = ConfigDict(extra="forbid")

    to: StrictStr = phone_field()
    type: Literal["contact"]
    contact: ContactCard
    reply_to: StrictStr | None = message_ref("the id of a message of this session to quote")


class SendReaction(BaseModel):
    """An emoji on a message of this chat; ``""`` removes the reaction."""

    model_config = ConfigDict(extra="forbid")

    to: StrictStr = phone_field()
    type: Literal["reaction"]
    message_id: StrictStr = Field(max_length=40, pattern=MESSAGE_ID)
    emoji: StrictStr = Field(max_length=32, examples=["👍"])


def _type_of(value: Any) -> str:
    found = value.get("type", "text") if isinstance(value, dict) else getattr(value, "type", "")
    return found if isinstance(found, str) else ""


SendMessage = Annotated[
    Annotated[SendText, Tag("text")]
    | Annotated[SendImage, Tag("image")]
    | Annotated[SendVideo, Tag("video")]
    | Annotated[SendAudio, Tag("audio")]
    | Annotated[SendDocument, Tag("document")]
    | Annotated[SendSticker, Tag("sticker")]
    | Annotated[SendLocation, Tag("location")]
    | Annotated[SendContact, Tag("contact")]
    | Annotated[SendReaction, Tag("reaction")],
    Discriminator(
        _type_of,
        custom_error_type="invalid_type",
        custom_error_message="type must be one of text, image, video, audio, document, "
        "sticker, location, contact, reaction",
    ),
]
"""A message to send: ``type`` says which (``text`` when left out)."""


class MediaOut(BaseModel):
    """A message's file: fetch it at ``GET /api/v1/media/{id}``."""

    id: str
    mime_type: str = Field(description="sniffed from the bytes")
    size: int
    sha256: str
    filename: str | None
    caption: str | None = None
    url: str | None = Field(
        default=None, description="in events and webhooks: a signed link, valid until"
    )
    url_expires_at: datetime | None = None


class LocationOut(BaseModel):
    latitude: float
    longitude: float
    name: str | None
    address: str | None


class ContactOut(BaseModel):
    name: str
    phones: list[str]
    vcard: str


class MessageOut(BaseModel):
    """A stored message."""

    id: str
    session: str
    direction: str = Field(description="in or out")
    chat_id: str
    from_: str = Field(alias="from")
    to: str
    type: str
    text: str | None
    status: str = Field(description="queued, sent, delivered, read, played, received or failed")
    error: str | None = Field(description="why it failed, or the last retried error")
    attempts: int = Field(description="how many times the engine was asked to send it")
    engine_message_id: str | None
    timestamp: datetime
    updated_at: datetime
    media: MediaOut | None = Field(
        default=None, description="image, video, audio, document, sticker"
    )
    media_error: str | None = Field(default=None, description="why a received file was not kept")
    voice: bool | None = Field(default=None, description="audio: a voice note")
    location: LocationOut | None = None
    contact: ContactOut | None = None
    message_id: str | None = Field(
        default=None, description="reaction: the message reacted to (null if unknown here)"
    )
    emoji: str | None = Field(default=None, description='reaction: the emoji ("" removes one)')
    reply_to: str | None = Field(default=None, description="the message this one quotes")
    link_preview: bool | None = None


class MessagePage(BaseModel):
    """A page of history, newest first (by timestamp when ``since``/``until`` is given); pass
    ``next_cursor`` as ``cursor``, with the same filters, for the next page."""

    data: list[MessageOut]
    next_cursor: str | None
