"""Request and response bodies of the contacts and groups API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictStr

from zapgate.messages.schemas import ADDRESS_DOC, ADDRESS_PATTERN

MAX_PARTICIPANTS_CHANGE = 256
Address = Annotated[
    StrictStr,
    Field(max_length=64, description=ADDRESS_DOC, json_schema_extra={"pattern": ADDRESS_PATTERN}),
]


class ContactOut(BaseModel):
    """Someone on WhatsApp as the engine knows them: by phone number, LID, or both."""

    id: str = Field(description="its number, else its LID", examples=["5511999999999"])
    chat_id: str = Field(description="where to send: <number>@c.us, else <digits>@lid")
    number: str | None = Field(description="the phone number (null: the engine does not know it)")
    lid: str | None = Field(description="the LID (null: the engine does not know it)")
    name: str | None


class ContactList(BaseModel):
    data: list[ContactOut]


class ExistsOut(BaseModel):
    """Whether a number (or LID) has WhatsApp, and its ids."""

    id: str = Field(description="the number or LID asked about, normalised")
    exists: bool = Field(description="on WhatsApp (a LID the engine cannot resolve: false)")
    chat_id: str | None = Field(description="where to send, when it exists")
    number: str | None
    lid: str | None


class PictureOut(BaseModel):
    url: str | None = Field(description="the profile picture (null: none, or hidden)")


class ParticipantOut(BaseModel):
    id: str = Field(description="<number>@c.us or <digits>@lid")
    admin: bool
    owner: bool


class ParticipantList(BaseModel):
    data: list[ParticipantOut]


class GroupOut(BaseModel):
    id: str = Field(examples=["120363012345678901@g.us"])
    name: str
    owner: str | None
    created_at: datetime
    participants: list[ParticipantOut]


class GroupList(BaseModel):
    data: list[GroupOut]


class CreateGroup(BaseModel):
    """A new group: the account (its owner and admin) and ``participants``."""

    model_config = ConfigDict(extra="forbid")

    name: StrictStr = Field(min_length=1, max_length=100, examples=["Vendas"])
    participants: list[Address] = Field(
        min_length=1, max_length=MAX_PARTICIPANTS_CHANGE, examples=[["5511988887777"]]
    )


class ParticipantsChange(BaseModel):
    """Participants to add or remove."""

    model_config = ConfigDict(extra="forbid")

    participants: list[Address] = Field(
        min_length=1, max_length=MAX_PARTICIPANTS_CHANGE, examples=[["5511988887777"]]
    )
