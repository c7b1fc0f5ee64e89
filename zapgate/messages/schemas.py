"""Request and response bodies of the messages API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Strict,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    Tag,
    model_validator,
)

from zapgate.channels import TELEGRAM_PATTERN
from zapgate.names import SESSION_NAME
from zapgate.validation import JsonInt, whole

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
LID_PATTERN = r"^[\t\n\v\f\r ]*[0-9]{6,20}@lid[\t\n\v\f\r ]*$"
"""A LID (``zapgate.phone.normalize_address``): WhatsApp's opaque id where it hides a number."""
ADDRESS_PATTERN = f"{PHONE_PATTERN}|{LID_PATTERN}"
ADDRESS_DOC = f"{PHONE_DOC}; or a LID, e.g. 123456789012345@lid"


RECIPIENT_PATTERN = f"{ADDRESS_PATTERN}|{TELEGRAM_PATTERN}"
RECIPIENT_DOC = (
    f"{ADDRESS_DOC}. On a Telegram session: a chat id (e.g. 123456789) or a public @username; "
    "on an SMS session: a number with country code (E.164)"
)


def recipient_field() -> Any:
    """A send's ``to``: an address of any channel (the session's channel decides at run time,
    answering ``invalid_recipient`` for one it cannot reach)."""
    return Field(
        max_length=64,
        description=RECIPIENT_DOC,
        examples=["5511999999999"],
        json_schema_extra={"pattern": RECIPIENT_PATTERN},
    )


def phone_field(*, lid: bool = True, **extra: Any) -> Any:
    """A recipient or sender field: at most 64 characters, a phone number (``PHONE_PATTERN``)
    or, unless ``lid`` is False, a LID (``LID_PATTERN``)."""
    return Field(
        max_length=64,
        description=ADDRESS_DOC if lid else PHONE_DOC,
        examples=["5511999999999"],
        json_schema_extra={"pattern": ADDRESS_PATTERN if lid else PHONE_PATTERN},
        **extra,
    )


MAX_CAPTION = 4096
MAX_FALLBACK_SECONDS = 86_400.0
MESSAGE_ID = r"^[A-Za-z0-9_]{1,40}$"


def message_ref(description: str) -> Any:
    return Field(
        default=None,
        max_length=40,
        pattern=MESSAGE_ID,
        description=description,
        examples=["msg_01J0000000000000000000000"],
    )


class Fallback(BaseModel):
    """Send the same text by SMS if this WhatsApp message is not delivered in time (or fails)."""

    model_config = ConfigDict(extra="forbid")

    session: StrictStr = Field(
        pattern=SESSION_NAME, description="an SMS session of this tenant", examples=["sms-br"]
    )
    after_seconds: float = Field(
        ge=1,
        le=MAX_FALLBACK_SECONDS,
        allow_inf_nan=False,
        description="how long delivery may take before the SMS goes",
        examples=[60],
    )


class SendText(BaseModel):
    """A text message to send (``type`` may be left out)."""

    model_config = ConfigDict(extra="forbid")

    to: StrictStr = recipient_field()
    type: Literal["text"] = "text"
    text: StrictStr = Field(min_length=1, max_length=MAX_TEXT, examples=["Olá, mundo!"])
    reply_to: StrictStr | None = message_ref("the id of a message of this session to quote")
    link_preview: StrictBool | None = Field(
        default=None, description="show a preview of the first link (default: when there is one)"
    )
    fallback: Fallback | None = Field(
        default=None,
        description="WhatsApp to a phone number: the same text by SMS through `session` if it "
        "is not delivered within `after_seconds`, or fails; the SMS has `fallback_of`, this "
        "message `fallback_id`",
    )


BASE64_PATTERN = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"
"""Standard base64, padded, no line breaks (what ``base64 -w0`` writes)."""


class MediaUrl(BaseModel):
    """A file zapgate fetches from ``url`` (public addresses only). Its type is sniffed from its
    bytes; ``mime_type`` is only a hint (for text files)."""

    model_config = ConfigDict(extra="forbid")

    url: StrictStr = Field(
        max_length=2048,
        pattern=r"^[Hh][Tt][Tt][Pp][Ss]?://",
        description="http(s) URL zapgate fetches (public addresses only)",
        examples=["https://example.com/invoice.pdf"],
    )
    filename: StrictStr | None = Field(default=None, max_length=255, examples=["invoice.pdf"])
    mime_type: StrictStr | None = Field(default=None, max_length=127, examples=["text/plain"])

    base64: None = Field(default=None, exclude=True)
    """Never given (so ``source.base64`` reads the same on either kind)."""


class MediaBase64(BaseModel):
    """A file given in ``base64``. Its type is sniffed from its bytes; ``mime_type`` is only a
    hint (for text files)."""

    model_config = ConfigDict(extra="forbid")

    base64: StrictStr = Field(
        min_length=4,
        pattern=BASE64_PATTERN,
        description="the file's bytes in base64 (standard alphabet, padded)",
    )
    filename: StrictStr | None = Field(default=None, max_length=255, examples=["invoice.pdf"])
    mime_type: StrictStr | None = Field(default=None, max_length=127, examples=["text/plain"])

    url: None = Field(default=None, exclude=True)
    """Never given (so ``source.url`` reads the same on either kind)."""


MediaSource = MediaUrl | MediaBase64
"""A file: ``{"url"}`` or ``{"base64"}``, with an optional ``filename`` and ``mime_type``."""


class _MediaSend(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: str

    to: StrictStr = recipient_field()
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

    to: StrictStr = recipient_field()
    type: Literal["location"]
    latitude: (
        Annotated[StrictFloat, Field(ge=-90, le=90)] | Annotated[StrictInt, Field(ge=-90, le=90)]
    ) = Field(examples=[-23.5505])
    longitude: (
        Annotated[StrictFloat, Field(ge=-180, le=180)]
        | Annotated[StrictInt, Field(ge=-180, le=180)]
    ) = Field(examples=[-46.6333])
    name: StrictStr | None = Field(default=None, max_length=256, examples=["Escritório"])
    address: StrictStr | None = Field(default=None, max_length=512)
    reply_to: StrictStr | None = message_ref("the id of a message of this session to quote")


ContactPhone = Annotated[
    StrictStr, Field(min_length=3, max_length=32, pattern=r"^[0-9+()./ -]{3,32}$")
]
"""A phone number as shown on a card: digits, spaces and ``+()./-``."""


class ContactFields(BaseModel):
    """A contact card made of a name and phone numbers (zapgate writes the vCard)."""

    model_config = ConfigDict(extra="forbid")

    name: StrictStr = Field(min_length=1, max_length=256, examples=["Ana Souza"])
    phones: list[ContactPhone] = Field(
        min_length=1, max_length=10, examples=[["+55 11 99999-9999"]]
    )


class ContactVcard(BaseModel):
    """A contact card given as a vCard; ``name`` and ``phones`` are read from it unless given."""

    model_config = ConfigDict(extra="forbid")

    vcard: StrictStr = Field(
        max_length=8192,
        pattern=r"^BEGIN:VCARD[\s\S]*END:VCARD\s*$",
        description="a vCard 3.0 or 4.0 (BEGIN:VCARD ... END:VCARD)",
    )
    name: StrictStr | None = Field(default=None, min_length=1, max_length=256)
    phones: list[ContactPhone] | None = Field(default=None, min_length=1, max_length=10)


ContactCard = ContactFields | ContactVcard
"""A contact card: ``name`` and ``phones``, or a raw ``vcard``."""


class SendContact(BaseModel):
    """A contact card."""

    model_config = ConfigDict(extra="forbid")

    to: StrictStr = recipient_field()
    type: Literal["contact"]
    contact: ContactCard
    reply_to: StrictStr | None = message_ref("the id of a message of this session to quote")


class SendReaction(BaseModel):
    """An emoji on a message of this chat; ``""`` removes the reaction."""

    model_config = ConfigDict(extra="forbid")

    to: StrictStr = recipient_field()
    type: Literal["reaction"]
    message_id: StrictStr = Field(max_length=40, pattern=MESSAGE_ID)
    emoji: StrictStr = Field(max_length=32, examples=["👍"])


MAX_POLL_OPTIONS = 12
PollOption = Annotated[StrictStr, Field(min_length=1, max_length=100)]


class PollSpec(BaseModel):
    """A poll: its question and 2 to 12 distinct options."""

    model_config = ConfigDict(extra="forbid")

    name: StrictStr = Field(min_length=1, max_length=255, examples=["Lunch?"])
    options: list[PollOption] = Field(
        min_length=2,
        max_length=MAX_POLL_OPTIONS,
        examples=[["Pizza", "Sushi"]],
        json_schema_extra={"uniqueItems": True},
    )
    selectable_count: JsonInt = Field(
        default=1,
        ge=0,
        le=MAX_POLL_OPTIONS,
        description="how many options a voter may pick (0, or as many as there are: any)",
    )

    @model_validator(mode="after")
    def _distinct(self) -> PollSpec:
        if len(set(self.options)) != len(self.options):
            raise ValueError("poll.options must be distinct")
        return self


class SendPoll(BaseModel):
    """A poll; votes come as ``message.poll_vote`` events and show in the message's ``poll``."""

    model_config = ConfigDict(extra="forbid")

    to: StrictStr = recipient_field()
    type: Literal["poll"]
    poll: PollSpec
    reply_to: StrictStr | None = message_ref("the id of a message of this session to quote")


# -- the Cloud API's own types: Meta's JSON, checked as Meta checks it --------------------------

_TEMPLATE_NAME = r"^[a-z0-9_]{1,512}$"
_LANGUAGE = r"^[a-z]{2,3}(_[A-Za-z]{2,4})?$"


class TemplateMedia(BaseModel):
    """A header file of a template: by a link, or by a media id uploaded to Meta."""

    model_config = ConfigDict(extra="forbid")

    link: StrictStr | None = Field(default=None, max_length=2048, pattern=r"^https?://")
    id: StrictStr | None = Field(default=None, max_length=64, pattern=r"^[0-9]{1,64}$")
    filename: StrictStr | None = Field(default=None, max_length=255)


class TemplateParameter(BaseModel):
    """One parameter, as Meta documents it: ``{"type": "text", "text": "..."}``, a
    ``currency``, a ``date_time``, a header ``image``/``video``/``document``, or a button's
    ``payload``; ``parameter_name`` for templates with named parameters."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["text", "currency", "date_time", "image", "video", "document", "payload"]
    parameter_name: StrictStr | None = Field(default=None, max_length=512)
    text: StrictStr | None = Field(default=None, max_length=32_768)
    payload: StrictStr | None = Field(default=None, max_length=4096)
    currency: dict[str, StrictStr | JsonInt] | None = Field(default=None, max_length=3)
    date_time: dict[str, StrictStr] | None = Field(default=None, max_length=1)
    image: TemplateMedia | None = None
    video: TemplateMedia | None = None
    document: TemplateMedia | None = None


ButtonIndex = Annotated[Annotated[int, Strict(), Field(ge=0, le=9)], BeforeValidator(whole)]
"""A template button's position (0-9), as ``JsonInt`` takes it; its bounds in the schema too
(on ``JsonInt | None`` they were not: they sat after the validator, outside JSON Schema)."""


class TemplateComponent(BaseModel):
    """A ``header``, ``body`` or ``button`` component with its parameters."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["header", "body", "button", "footer"]
    sub_type: Literal["quick_reply", "url", "copy_code", "flow", "catalog"] | None = None
    index: ButtonIndex | None = None
    parameters: list[TemplateParameter] = Field(default_factory=list, max_length=100)


class TemplateLanguage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: StrictStr = Field(pattern=_LANGUAGE, examples=["pt_BR"])
    policy: Literal["deterministic"] | None = None


class TemplateSpec(BaseModel):
    """A template Meta approved for the account, and the values of its parameters."""

    model_config = ConfigDict(extra="forbid")

    name: StrictStr = Field(pattern=_TEMPLATE_NAME, examples=["order_update"])
    language: TemplateLanguage
    components: list[TemplateComponent] = Field(default_factory=list, max_length=10)


class SendTemplate(BaseModel):
    """A template (Cloud API): the only kind of message that may open a conversation, or
    reach a customer more than 24 hours after their last message."""

    model_config = ConfigDict(extra="forbid")

    to: StrictStr = phone_field(lid=False)
    type: Literal["template"]
    template: TemplateSpec
    reply_to: StrictStr | None = message_ref("the id of a message of this session to quote")


class InteractiveText(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: StrictStr = Field(min_length=1, max_length=60)


class InteractiveBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: StrictStr = Field(min_length=1, max_length=1024)


class InteractiveHeader(BaseModel):
    """A text header (a file header by link, for reply buttons)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["text", "image", "video", "document"]
    text: StrictStr | None = Field(default=None, min_length=1, max_length=60)
    image: TemplateMedia | None = None
    video: TemplateMedia | None = None
    document: TemplateMedia | None = None


class ReplyButtonTitle(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: StrictStr = Field(min_length=1, max_length=256)
    title: StrictStr = Field(min_length=1, max_length=20)


class ReplyButton(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["reply"]
    reply: ReplyButtonTitle


class ButtonsAction(BaseModel):
    model_config = ConfigDict(extra="forbid")

    buttons: list[ReplyButton] = Field(min_length=1, max_length=3)


class InteractiveButtons(BaseModel):
    """Up to three reply buttons under a text; the customer's tap comes back as a message."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["button"]
    header: InteractiveHeader | None = None
    body: InteractiveBody
    footer: InteractiveText | None = None
    action: ButtonsAction


class ListRow(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: StrictStr = Field(min_length=1, max_length=200)
    title: StrictStr = Field(min_length=1, max_length=24)
    description: StrictStr | None = Field(default=None, max_length=72)


class ListSection(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: StrictStr | None = Field(default=None, min_length=1, max_length=24)
    rows: list[ListRow] = Field(min_length=1, max_length=10)


class ListAction(BaseModel):
    model_config = ConfigDict(extra="forbid")

    button: StrictStr = Field(min_length=1, max_length=20)
    sections: list[ListSection] = Field(min_length=1, max_length=10)


class ListBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: StrictStr = Field(min_length=1, max_length=4096)


class ListHeader(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["text"]
    text: StrictStr = Field(min_length=1, max_length=60)


class InteractiveList(BaseModel):
    """A menu: a button that opens sections of rows (at most 10 rows in all)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["list"]
    header: ListHeader | None = None
    body: ListBody
    footer: InteractiveText | None = None
    action: ListAction


def interactive_problem(interactive: InteractiveButtons | InteractiveList) -> str | None:
    """What Meta's rules across fields refuse (JSON Schema cannot say them), else None."""
    if isinstance(interactive, InteractiveButtons):
        replies = [button.reply for button in interactive.action.buttons]
        if len({r.id for r in replies}) != len(replies):
            return "interactive.action.buttons: the ids must be distinct"
        if len({r.title for r in replies}) != len(replies):
            return "interactive.action.buttons: the titles must be distinct"
        return None
    sections = interactive.action.sections
    rows = [row for section in sections for row in section.rows]
    if len(rows) > 10:
        return "interactive.action.sections: at most 10 rows in all"
    if len({row.id for row in rows}) != len(rows):
        return "interactive.action.sections: the row ids must be distinct"
    if len(sections) > 1 and any(section.title is None for section in sections):
        return "interactive.action.sections: each needs a title when there are several"
    return None


class SendInteractive(BaseModel):
    """Reply buttons or a list (Cloud API), in Meta's own ``interactive`` shape."""

    model_config = ConfigDict(extra="forbid")

    to: StrictStr = phone_field(lid=False)
    type: Literal["interactive"]
    interactive: InteractiveButtons | InteractiveList = Field(discriminator="type")
    reply_to: StrictStr | None = message_ref("the id of a message of this session to quote")


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
    | Annotated[SendReaction, Tag("reaction")]
    | Annotated[SendPoll, Tag("poll")]
    | Annotated[SendTemplate, Tag("template")]
    | Annotated[SendInteractive, Tag("interactive")],
    Discriminator(
        _type_of,
        custom_error_type="invalid_type",
        custom_error_message="type must be one of text, image, video, audio, document, "
        "sticker, location, contact, reaction, poll, template, interactive",
    ),
]
"""A message to send: ``type`` says which (``text`` when left out)."""
SEND_MODELS: dict[str, type[BaseModel]] = {
    "text": SendText,
    "image": SendImage,
    "video": SendVideo,
    "audio": SendAudio,
    "document": SendDocument,
    "sticker": SendSticker,
    "location": SendLocation,
    "contact": SendContact,
    "reaction": SendReaction,
    "poll": SendPoll,
    "template": SendTemplate,
    "interactive": SendInteractive,
}
"""The model of each type of ``SendMessage``."""


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


class PollVoteOut(BaseModel):
    selected: list[str] = Field(description="the options picked (empty: the vote taken back)")
    timestamp: datetime


class PollOut(BaseModel):
    name: str
    options: list[str]
    selectable_count: int = Field(description="how many a voter may pick (0: any)")
    votes: dict[str, PollVoteOut] | None = Field(
        default=None, description="each voter's (a number or chat id) latest vote"
    )


class MessageOut(BaseModel):
    """A stored message."""

    id: str
    session: str
    channel: Literal["whatsapp", "telegram", "sms"] = Field(
        description="the channel of its session"
    )
    direction: str = Field(description="in or out")
    chat_id: str
    from_: str = Field(alias="from")
    from_phone: str | None = Field(
        default=None,
        description="received from a LID (`from` is `<digits>@lid`): the sender's phone "
        "number, when the engine knows it",
    )
    to: str
    type: str
    text: str | None
    status: str = Field(
        description="queued, sent, delivered, read, played, received, failed, revoked (deleted "
        "for everyone) or cancelled (deleted while queued)"
    )
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
    poll: PollOut | None = None
    template: dict[str, Any] | None = Field(
        default=None, description="template: Meta's template object, as sent"
    )
    interactive: dict[str, Any] | None = Field(
        default=None, description="interactive: Meta's interactive object, as sent"
    )
    raw: dict[str, Any] | None = Field(
        default=None,
        description="received through the Cloud API: Meta's message object as it came (a "
        "button or list reply's id is in `raw.interactive`)",
    )
    edited_at: datetime | None = Field(default=None, description="when its text was last edited")
    revoked_at: datetime | None = Field(
        default=None, description="when it was deleted for everyone (or cancelled)"
    )
    segments: int | None = Field(
        default=None, description="SMS: how many segments the text takes (each is billed)"
    )
    encoding: Literal["GSM-7", "UCS-2"] | None = Field(
        default=None, description="SMS: GSM-7 (160 characters a segment) or UCS-2 (70)"
    )
    fallback: Fallback | None = Field(
        default=None, description="the SMS to send if it is not delivered in time"
    )
    fallback_id: str | None = Field(
        default=None, description="the SMS sent in its place when it was not delivered in time"
    )
    fallback_of: str | None = Field(
        default=None, description="an SMS sent in place of this WhatsApp message"
    )


class EditMessage(BaseModel):
    """A sent text's new text."""

    model_config = ConfigDict(extra="forbid")

    text: StrictStr = Field(min_length=1, max_length=MAX_TEXT, examples=["Olá, mundo! (editado)"])


class SetPresence(BaseModel):
    """What the chat shows of this account: ``typing``, ``recording`` (a voice note) or
    ``paused`` (nothing)."""

    model_config = ConfigDict(extra="forbid")

    state: Literal["typing", "recording", "paused"]


class MessagePage(BaseModel):
    """A page of history, newest first (by timestamp when ``since``/``until`` is given); pass
    ``next_cursor`` as ``cursor``, with the same filters, for the next page."""

    data: list[MessageOut]
    next_cursor: str | None
