"""The Chatwoot API client against the strict fake Chatwoot on 127.0.0.1: contacts found by their
exact phone number and created in the inbox, conversations, messages (text and files) and their
statuses shaped as Chatwoot takes them; what Chatwoot echoes on the inbox's webhook; and its
refusals sorted into what a retry may fix and what it cannot."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.conftest import free_port
from tests.support.fake_chatwoot import FakeChatwoot, running
from tests.support.receiver import DeadReceiver, Receiver
from zapgate.integrations.chatwoot.client import ChatwootClient, ChatwootError, Contact
from zapgate.webhooks.ssrf import Allowlist

PEER = "5511988887777"
PLUS_PEER = "+5511988887777"


@pytest.fixture
async def chatwoot() -> AsyncIterator[FakeChatwoot]:
    async with running() as fake:
        yield fake
    assert fake.problems == [], "zapgate sent what Chatwoot would misread"


@pytest.fixture
async def client(chatwoot: FakeChatwoot) -> AsyncIterator[ChatwootClient]:
    found = client_for(chatwoot)
    yield found
    await found.close()


def client_for(
    fake: FakeChatwoot, *, token: str | None = None, allowlist: str = "127.0.0.1"
) -> ChatwootClient:
    token = fake.token if token is None else token
    return ChatwootClient(fake.url, fake.account_id, token, Allowlist.parse(allowlist))


async def conversation_of(fake: FakeChatwoot, client: ChatwootClient) -> int:
    contact = await client.create_contact(fake.inbox_id, "Maria", PEER, f"{PEER}@c.us")
    assert contact.source_id is not None
    return await client.create_conversation(fake.inbox_id, contact.id, contact.source_id)


async def test_a_contact_created_in_the_inbox_is_found_again_by_its_phone(
    chatwoot: FakeChatwoot, client: ChatwootClient
) -> None:
    assert await client.find_contact(PEER, chatwoot.inbox_id) is None

    created = await client.create_contact(
        chatwoot.inbox_id, "Maria", PEER, f"{PEER}@c.us", source_id="wa-5511988887777"
    )

    stored = chatwoot.contact(created.id)
    assert (stored.name, stored.phone_number, stored.identifier) == (
        "Maria",
        PLUS_PEER,
        f"{PEER}@c.us",
    )
    assert created == Contact(stored.id, "wa-5511988887777")
    assert await client.find_contact(PLUS_PEER, chatwoot.inbox_id) == created
    assert chatwoot.requests[0] == (
        f"GET /api/v1/accounts/{chatwoot.account_id}/contacts/search?q=%2B5511988887777&page=1"
    )


async def test_chatwoot_makes_up_the_source_id_when_none_is_given(
    chatwoot: FakeChatwoot, client: ChatwootClient
) -> None:
    created = await client.create_contact(chatwoot.inbox_id, "Maria", PEER)

    assert created.source_id == chatwoot.contact(created.id).source_in(chatwoot.inbox_id)
    assert created.source_id


async def test_a_phone_is_matched_exactly_not_as_part_of_a_longer_number(
    chatwoot: FakeChatwoot, client: ChatwootClient
) -> None:
    chatwoot.add_contact("Longer", PLUS_PEER + "1")
    chatwoot.add_contact("Named like the number", None, identifier=PLUS_PEER + "@x")

    assert await client.find_contact(PEER, chatwoot.inbox_id) is None


async def test_a_contact_outside_the_inbox_joins_it_with_its_first_conversation(
    chatwoot: FakeChatwoot, client: ChatwootClient
) -> None:
    made_in_dashboard = chatwoot.add_contact("Maria", PLUS_PEER)

    found = await client.find_contact(PEER, chatwoot.inbox_id)
    assert found == Contact(made_in_dashboard.id, None)
    conversation_id = await client.create_conversation(chatwoot.inbox_id, found.id, "wa-1")

    assert chatwoot.conversation(conversation_id).contact_id == made_in_dashboard.id
    assert await client.find_contact(PEER, chatwoot.inbox_id) == Contact(found.id, "wa-1")


async def test_an_incoming_message_is_posted_and_chatwoot_echoes_it_on_the_webhook(
    chatwoot: FakeChatwoot, client: ChatwootClient
) -> None:
    receiver = Receiver(free_port())
    await receiver.start()
    try:
        chatwoot.webhook_url = receiver.url
        conversation_id = await conversation_of(chatwoot, client)

        message_id = await client.post_message(
            conversation_id, "olá <b>&</b>", "incoming", "WAID:3EB0A1"
        )
        [echo] = await chatwoot.wait_deliveries(1)
    finally:
        await receiver.stop()

    [stored] = await chatwoot.wait_messages(1)
    assert (stored.id, stored.content, stored.message_type) == (
        message_id,
        "olá <b>&</b>",
        "incoming",
    )
    assert (stored.source_id, stored.private, stored.attachments) == ("WAID:3EB0A1", False, [])
    assert (echo.status, stored.status) == (200, "sent")
    event = echo.payload
    assert (event["event"], event["id"], event["message_type"]) == (
        "message_created",
        message_id,
        "incoming",
    )
    assert event["source_id"] == "WAID:3EB0A1"
    assert event["conversation"]["meta"]["sender"]["phone_number"] == PLUS_PEER
    assert b"\\u003cb\\u003e\\u0026" in receiver.requests[0].body
    assert "x-chatwoot-signature" not in receiver.requests[0].headers


async def test_an_agent_reply_is_posted_signed_without_a_source_id(
    chatwoot: FakeChatwoot, client: ChatwootClient
) -> None:
    received: list[tuple[bytes, dict[str, str]]] = []

    async def record(url: str, body: bytes, headers: dict[str, str]) -> int:
        received.append((body, headers))
        return 200

    chatwoot.webhook_url, chatwoot.webhook_secret = "http://zapgate.test/hook", "inbox-secret"
    chatwoot.webhook_post = record
    conversation_id = await conversation_of(chatwoot, client)

    reply = await chatwoot.agent_reply(conversation_id, "Bom dia!")

    [(body, headers)] = received
    expected = hmac.new(
        b"inbox-secret", headers["X-Chatwoot-Timestamp"].encode() + b"." + body, hashlib.sha256
    ).hexdigest()
    assert headers["X-Chatwoot-Signature"] == f"sha256={expected}"
    event = chatwoot.deliveries[0].payload
    assert (event["id"], event["message_type"], event["source_id"], event["private"]) == (
        reply.id,
        "outgoing",
        None,
        False,
    )
    assert event["sender"]["type"] == "user"
    assert (
        event["conversation"]["contact_inbox"]["source_id"]
        == chatwoot.conversation(conversation_id).source_id
    )


async def test_a_file_goes_as_an_attachment_with_its_caption(
    chatwoot: FakeChatwoot, client: ChatwootClient
) -> None:
    conversation_id = await conversation_of(chatwoot, client)
    photo = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 64

    message_id = await client.post_message(
        conversation_id, "a foto", "outgoing", "WAID:3EB0B2", ("foto.png", "image/png", photo)
    )

    [stored] = await chatwoot.wait_messages(1)
    assert (stored.id, stored.content, stored.message_type) == (message_id, "a foto", "outgoing")
    assert (stored.source_id, stored.private) == ("WAID:3EB0B2", False)
    [attachment] = stored.attachments
    assert (attachment.filename, attachment.content_type, attachment.data) == (
        "foto.png",
        "image/png",
        photo,
    )


async def test_a_status_update_reaches_the_message_and_never_goes_back_from_read(
    chatwoot: FakeChatwoot, client: ChatwootClient
) -> None:
    conversation_id = await conversation_of(chatwoot, client)
    message_id = await client.post_message(conversation_id, "oi", "outgoing", "WAID:1")
    message = chatwoot.message(message_id)

    await client.update_status(conversation_id, message_id, "read")
    await client.update_status(conversation_id, message_id, "delivered")
    assert message.status == "read"

    await client.update_status(conversation_id, message_id, "failed", "number not on WhatsApp")
    assert (message.status, message.external_error) == ("failed", "number not on WhatsApp")


async def test_a_refused_token_is_not_retryable_and_not_quoted(chatwoot: FakeChatwoot) -> None:
    client = client_for(chatwoot, token="wrong-token-987654321")
    try:
        with pytest.raises(ChatwootError) as refused:
            await client.find_contact(PEER, chatwoot.inbox_id)
    finally:
        await client.close()

    assert (refused.value.status, refused.value.retryable, refused.value.refused) == (
        401,
        False,
        True,
    )
    assert "Invalid Access Token" in str(refused.value)
    assert "wrong-token" not in refused.value.public_reason


async def test_a_deleted_conversation_is_not_found(
    chatwoot: FakeChatwoot, client: ChatwootClient
) -> None:
    conversation_id = await conversation_of(chatwoot, client)
    chatwoot.delete_conversation(conversation_id)

    with pytest.raises(ChatwootError) as gone:
        await client.post_message(conversation_id, "oi", "incoming", "WAID:2")

    assert (gone.value.status, gone.value.not_found, gone.value.retryable) == (404, True, False)


@pytest.mark.parametrize("status", [500, 502, 503, 429])
async def test_server_errors_and_throttling_are_retryable(
    chatwoot: FakeChatwoot, client: ChatwootClient, status: int
) -> None:
    chatwoot.fail_next(status)

    with pytest.raises(ChatwootError) as failed:
        await client.create_contact(chatwoot.inbox_id, "Maria", PEER)

    assert (failed.value.status, failed.value.retryable) == (status, True)
    assert chatwoot.contacts == []


async def test_a_phone_already_taken_is_refused_in_chatwoot_words(
    chatwoot: FakeChatwoot, client: ChatwootClient
) -> None:
    chatwoot.add_contact("Maria", PLUS_PEER)

    with pytest.raises(ChatwootError) as taken:
        await client.create_contact(chatwoot.inbox_id, "Maria", PEER)

    assert (taken.value.status, taken.value.retryable) == (422, False)
    assert "Phone number has already been taken" in taken.value.public_reason


async def test_no_answer_is_retryable() -> None:
    dead = DeadReceiver(free_port())
    await dead.start()
    client = ChatwootClient(
        f"http://127.0.0.1:{dead.port}", 1, "token", Allowlist.parse("127.0.0.1"), 0.2
    )
    try:
        with pytest.raises(ChatwootError) as silent:
            await client.find_contact(PEER, 7)
    finally:
        await client.close()
        await dead.stop()

    assert (silent.value.status, silent.value.retryable) == (0, True)
    assert "did not answer in time" in silent.value.public_reason


async def test_an_address_outside_the_allowlist_is_refused_for_good(
    chatwoot: FakeChatwoot,
) -> None:
    client = client_for(chatwoot, allowlist="")
    try:
        with pytest.raises(ChatwootError) as unsafe:
            await client.find_contact(PEER, chatwoot.inbox_id)
    finally:
        await client.close()

    assert (unsafe.value.status, unsafe.value.retryable) == (0, False)
    assert chatwoot.requests == []


async def test_the_fake_refuses_what_chatwoot_would_silently_drop(chatwoot: FakeChatwoot) -> None:
    root = f"{chatwoot.url}/api/v1/accounts/{chatwoot.account_id}"
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{root}/contacts", json={"inbox_id": 7}) as anonymous:
            assert anonymous.status == 401
            assert (await anonymous.json())["errors"]
        headers = {"api_access_token": chatwoot.token}
        body = {"inbox_id": chatwoot.inbox_id, "phone": PLUS_PEER}
        async with session.post(f"{root}/contacts", json=body, headers=headers) as unknown:
            assert unknown.status == 422

    assert chatwoot.problems == [
        f"POST /api/v1/accounts/{chatwoot.account_id}/contacts: "
        "unknown field(s) ['phone'] (Chatwoot would drop them)"
    ]
    chatwoot.problems.clear()
