"""REST routes for contacts and groups, as the session's engine knows them."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response

from zapgate.chats.schemas import GROUP_PATTERN
from zapgate.clock import to_iso
from zapgate.directory.schemas import (
    ContactList,
    ContactOut,
    CreateGroup,
    ExistsOut,
    GroupList,
    GroupOut,
    ParticipantList,
    ParticipantsChange,
    PictureOut,
)
from zapgate.directory.service import DirectoryService
from zapgate.engines.directory import Group, Participant, Person
from zapgate.errors import ContactNotFound
from zapgate.http.auth import Admin, Reader
from zapgate.http.deps import SessionName, services_of
from zapgate.http.errors import responses
from zapgate.http.openapi import success
from zapgate.http.responses import Json
from zapgate.messages.schemas import ADDRESS_DOC, ADDRESS_PATTERN
from zapgate.phone import chat_id, normalize_address
from zapgate.services import Services

router = APIRouter(prefix="/api/v1/sessions/{session}", tags=["contacts and groups"])
ContactId = Annotated[
    str,
    Path(
        max_length=64, pattern=ADDRESS_PATTERN, description=ADDRESS_DOC, examples=["5511999999999"]
    ),
]
GroupId = Annotated[
    str,
    Path(
        max_length=64,
        pattern=r"^[0-9]{6,30}(-[0-9]{6,20})?(@g\.us)?$",
        description="a group id (the @g.us suffix may be left out)",
        examples=["120363012345678901@g.us"],
    ),
]
ENGINE_ERRORS = (404, 409, 503)
"""Every route here: no session (404), not running or connected (409), the engine failed (503);
and 422 ``unsupported`` when the session's engine cannot do it."""
_GROUP = re.compile(GROUP_PATTERN)


def directory_of(services: Services) -> DirectoryService:
    """The directory use cases over the app's services (no state of their own)."""
    return DirectoryService(services.sessions)


def _address(services: Services, raw: str) -> str:
    return normalize_address(raw, services.settings.default_country_code)


def _group_id(raw: str) -> str:
    return raw if raw.endswith("@g.us") else f"{raw}@g.us"


def person_body(person: Person) -> dict[str, Any]:
    known = person.number or person.lid
    where = chat_id(person.number) if person.number else person.lid
    return {
        "id": known,
        "chat_id": where,
        "number": person.number,
        "lid": person.lid,
        "name": person.name,
    }


def participant_body(participant: Participant) -> dict[str, Any]:
    return {"id": participant.id, "admin": participant.admin, "owner": participant.owner}


def group_body(group: Group) -> dict[str, Any]:
    return {
        "id": group.id,
        "name": group.name,
        "owner": group.owner,
        "created_at": to_iso(group.created_at_ms),
        "participants": [participant_body(p) for p in group.participants],
    }


# contacts -----------------------------------------------------------------------------------


@router.get(
    "/contacts",
    response_model=ContactList,
    responses=responses(*ENGINE_ERRORS),
    summary="The account's contacts (engines that support it)",
)
async def list_contacts(request: Request, session: SessionName, caller: Reader) -> Json:
    people = await directory_of(services_of(request)).contacts(caller.tenant, session)
    return Json({"data": [person_body(person) for person in people]})


@router.get(
    "/contacts/{contact}",
    response_model=ContactOut,
    responses=responses(*ENGINE_ERRORS),
    summary="Who a number or LID is: both ids where the engine knows them",
    description="404 `contact_not_found` for a number without WhatsApp, or a LID the engine "
    "cannot resolve.",
)
async def get_contact(
    request: Request, session: SessionName, contact: ContactId, caller: Reader
) -> Json:
    services = services_of(request)
    person = await directory_of(services).lookup(
        caller.tenant, session, _address(services, contact)
    )
    if not person.on_whatsapp:
        raise ContactNotFound(f"{contact} is not on WhatsApp")
    return Json(person_body(person))


@router.get(
    "/contacts/{contact}/exists",
    response_model=ExistsOut,
    responses=responses(*ENGINE_ERRORS),
    summary="Whether a number (or LID) is on WhatsApp",
)
async def contact_exists(
    request: Request, session: SessionName, contact: ContactId, caller: Reader
) -> Json:
    services = services_of(request)
    address = _address(services, contact)
    directory = directory_of(services)
    try:
        person = await directory.lookup(caller.tenant, session, address)
    except ContactNotFound:  # a LID the engine cannot resolve
        person = Person(None, None, on_whatsapp=False)
    found = person_body(person) if person.on_whatsapp else {"chat_id": None}
    return Json(
        {
            "id": address,
            "exists": person.on_whatsapp,
            "chat_id": found["chat_id"],
            "number": person.number,
            "lid": person.lid,
        }
    )


@router.get(
    "/contacts/{contact}/picture",
    response_model=PictureOut,
    responses=responses(*ENGINE_ERRORS),
    summary="The profile picture URL of a number or LID",
)
async def contact_picture(
    request: Request, session: SessionName, contact: ContactId, caller: Reader
) -> Json:
    services = services_of(request)
    url = await directory_of(services).picture(caller.tenant, session, _address(services, contact))
    return Json({"url": url})


# groups -------------------------------------------------------------------------------------


@router.get(
    "/groups",
    response_model=GroupList,
    responses=responses(*ENGINE_ERRORS),
    summary="The groups the account is in",
)
async def list_groups(request: Request, session: SessionName, caller: Reader) -> Json:
    groups = await directory_of(services_of(request)).groups(caller.tenant, session)
    return Json({"data": [group_body(group) for group in groups]})


@router.post(
    "/groups",
    status_code=201,
    response_model=GroupOut,
    responses={**responses(*ENGINE_ERRORS, 413), **success(201, "The new group")},
    summary="Create a group (the account is its owner and admin)",
    description="422 `not_on_whatsapp` naming the participants who have no WhatsApp.",
)
async def create_group(
    request: Request, session: SessionName, body: CreateGroup, caller: Admin
) -> Json:
    services = services_of(request)
    participants = [_address(services, p) for p in body.participants]
    group = await directory_of(services).create_group(
        caller.tenant, session, body.name, participants
    )
    return Json(group_body(group), status_code=201)


@router.get(
    "/groups/{group}",
    response_model=GroupOut,
    responses=responses(*ENGINE_ERRORS),
    summary="A group, with its participants",
)
async def get_group(request: Request, session: SessionName, group: GroupId, caller: Reader) -> Json:
    found = await directory_of(services_of(request)).group(caller.tenant, session, _group_id(group))
    return Json(group_body(found))


@router.get(
    "/groups/{group}/participants",
    response_model=ParticipantList,
    responses=responses(*ENGINE_ERRORS),
    summary="A group's participants",
)
async def list_participants(
    request: Request, session: SessionName, group: GroupId, caller: Reader
) -> Json:
    found = await directory_of(services_of(request)).group(caller.tenant, session, _group_id(group))
    return Json({"data": [participant_body(p) for p in found.participants]})


@router.post(
    "/groups/{group}/participants/add",
    response_model=GroupOut,
    responses=responses(*ENGINE_ERRORS, 413),
    summary="Add participants to a group (those already in stay as they are)",
)
async def add_participants(
    request: Request, session: SessionName, group: GroupId, body: ParticipantsChange, caller: Admin
) -> Json:
    services = services_of(request)
    participants = [_address(services, p) for p in body.participants]
    changed = await directory_of(services).add_participants(
        caller.tenant, session, _group_id(group), participants
    )
    return Json(group_body(changed))


@router.post(
    "/groups/{group}/participants/remove",
    response_model=GroupOut,
    responses=responses(*ENGINE_ERRORS, 413),
    summary="Remove participants from a group (those not in it are ignored)",
)
async def remove_participants(
    request: Request, session: SessionName, group: GroupId, body: ParticipantsChange, caller: Admin
) -> Json:
    services = services_of(request)
    participants = [_address(services, p) for p in body.participants]
    changed = await directory_of(services).remove_participants(
        caller.tenant, session, _group_id(group), participants
    )
    return Json(group_body(changed))


@router.post(
    "/groups/{group}/leave",
    status_code=204,
    responses=responses(*ENGINE_ERRORS),
    summary="Leave a group",
)
async def leave_group(
    request: Request, session: SessionName, group: GroupId, caller: Admin
) -> Response:
    await directory_of(services_of(request)).leave_group(caller.tenant, session, _group_id(group))
    return Response(status_code=204)
