"""The WPPConnect engine's edges, without Chromium: the bridge process wrapper (with a stand-in
node script), and what crosses the bridge both ways for each message type."""

from __future__ import annotations

import asyncio
import base64
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require_service
from tests.contract.drivers import WEBP, pdf, png
from tests.support.procs import pids_mentioning
from zapgate.engines.base import (
    MESSAGE_TYPES,
    Contact,
    IncomingCall,
    Location,
    Media,
    MessageEdited,
    OutboundMessage,
    PermanentEngineError,
    Poll,
    PollVote,
    UnsupportedMessageType,
)
from zapgate.engines.directory import Participant, Person
from zapgate.engines.wppconnect import mapping
from zapgate.engines.wppconnect.engine import _send_request
from zapgate.engines.wppconnect.rpc import BridgeProcess

# Starts a grandchild in the bridge's process group (as Chromium is), says so, then idles.
STAND_IN = """
const { spawn } = require("child_process");
const child = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)", "%s"], {
  stdio: "ignore",
});
process.stdout.write(JSON.stringify({ event: "child", data: { pid: child.pid } }) + "\\n");
setInterval(() => {}, 1000);
"""


@pytest.mark.node
async def test_cancelling_an_unstopped_bridge_kills_its_group_instead_of_hanging(
    tmp_path: Path,
) -> None:
    node = shutil.which("node")
    require_service(None if node else "node is not installed")
    assert node is not None
    marker = f"zapgate-bridge-stand-in-{tmp_path.name}"
    script = tmp_path / "bridge.cjs"
    script.write_text(STAND_IN % marker)
    started: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()

    async def on_event(name: str, data: dict[str, Any]) -> None:
        if name == "child" and not started.done():
            started.set_result(data)

    bridge = BridgeProcess(node, script, on_event, label="stand-in")
    await bridge.spawn()
    async with asyncio.timeout(10):
        await started
    assert pids_mentioning(marker), "the stand-in's grandchild should be running"

    # What the event loop does at shutdown when nobody called terminate(): cancel the tasks.
    tasks = [t for t in asyncio.all_tasks() if t.get_name().endswith(":stand-in")]
    assert len(tasks) == 2
    for task in tasks:
        task.cancel()
    async with asyncio.timeout(10):
        await asyncio.gather(*tasks, return_exceptions=True)

    assert bridge.exited.is_set()
    assert bridge.returncode is not None
    assert bridge.returncode < 0, "killed by a signal"
    async with asyncio.timeout(10):
        while pids_mentioning(marker):
            await asyncio.sleep(0.05)


# -- what crosses the bridge ----------------------------------------------------------------

PEER = "5511988887777"
QUOTED = "false_5511988887777@c.us_3A0123456789ABCDEF01"


def outbound(kind: str, **fields: Any) -> OutboundMessage:
    return OutboundMessage("msg_1", PEER, kind, fields.pop("text", None), **fields)


@pytest.mark.parametrize(
    ("message", "method", "expected"),
    [
        (
            outbound("text", text="hi https://x.example", link_preview=True, reply_to=QUOTED),
            "send_text",
            {"text": "hi https://x.example", "linkPreview": True, "quotedId": QUOTED},
        ),
        (
            outbound("image", text="cap", media=Media(png(), "image/png", "a.png")),
            "send_file",
            {"kind": "image", "caption": "cap", "filename": "a.png"},
        ),
        (
            outbound("audio", media=Media(b"OggS", "audio/ogg"), voice=True, reply_to=QUOTED),
            "send_file",
            {"kind": "voice", "quotedId": QUOTED},
        ),
        (outbound("audio", media=Media(b"ID3", "audio/mpeg")), "send_file", {"kind": "audio"}),
        (
            outbound("document", text="c", media=Media(pdf(), "application/pdf", "r.pdf")),
            "send_file",
            {"kind": "document", "filename": "r.pdf", "caption": "c"},
        ),
        (outbound("sticker", text="x", media=Media(WEBP, "image/webp")), "send_file", {}),
        (
            outbound("location", location=Location(-23.5, -46.6, "SP", "Av. Paulista")),
            "send_location",
            {"latitude": -23.5, "longitude": -46.6, "name": "SP", "address": "Av. Paulista"},
        ),
        (
            outbound("contact", contact=Contact("Ana", ("+55 11 97777-6666", "+1 555"), "")),
            "send_contact",
            {"contactId": "5511977776666@c.us", "name": "Ana"},
        ),
        (
            outbound("reaction", target=QUOTED, emoji=""),
            "react",
            {"messageId": QUOTED, "emoji": ""},
        ),
    ],
    ids=lambda value: value.kind if isinstance(value, OutboundMessage) else None,
)
def test_each_type_has_its_bridge_request(
    message: OutboundMessage, method: str, expected: dict[str, Any]
) -> None:
    called, params = _send_request(message)
    assert called == method
    assert params.items() >= expected.items()
    if message.media is not None:
        assert params["base64"] == message.media.data_uri()
    if message.kind == "sticker":
        assert "caption" not in params, "a sticker has no caption"
    if message.kind != "reaction":
        assert params["to"] == f"{PEER}@c.us"


def test_every_type_is_mapped_and_an_unknown_one_is_refused_by_name() -> None:
    assert set(MESSAGE_TYPES) <= {"text", *mapping.KINDS.values(), "reaction"}
    with pytest.raises(UnsupportedMessageType, match="wppconnect engine cannot send hologram"):
        _send_request(outbound("hologram", text="?"))
    with pytest.raises(PermanentEngineError, match="needs a file"):
        _send_request(outbound("image"))
    with pytest.raises(PermanentEngineError, match="phone"):
        _send_request(outbound("contact", contact=Contact("Ana", (), "")))


def inbound_event(**fields: Any) -> dict[str, Any]:
    return {
        "id": "false_x@c.us_1",
        "from": f"{PEER}@c.us",
        "to": "5511999999999@c.us",
        "timestamp": 1700000000,
        **fields,
    }


def test_an_inbound_file_arrives_decoded_and_a_voice_note_is_audio() -> None:
    data = base64.b64encode(b"OggS-voice").decode()
    message = mapping.inbound(
        inbound_event(
            type="ptt",
            body=None,
            quotedMsgId=QUOTED,
            media={"data": data, "mimetype": "audio/ogg; codecs=opus", "filename": "../v.ogg"},
        )
    )
    assert message is not None
    assert (message.kind, message.voice, message.reply_to) == ("audio", True, QUOTED)
    assert message.media == Media(b"OggS-voice", "audio/ogg", ".._v.ogg")
    assert message.timestamp_ms == 1700000000000


@pytest.mark.parametrize(
    "media",
    [
        None,
        {"data": "not base64!!", "mimetype": "image/png"},
        {
            "data": "A" * (mapping.base64_limit(mapping.MAX_MEDIA_BYTES) + 4),
            "mimetype": "image/png",
        },
    ],
    ids=["left out by the bridge", "not base64", "larger than allowed"],
)
def test_an_inbound_file_that_cannot_be_trusted_is_left_out(media: dict[str, Any] | None) -> None:
    event = inbound_event(type="image", body="look", mediaMissing="too_large")
    if media is not None:
        event["media"] = media
    message = mapping.inbound(event)
    assert message is not None
    assert (message.kind, message.text, message.media) == ("image", "look", None)


def test_an_inbound_place_and_card_are_read_and_odd_types_skipped() -> None:
    place = mapping.inbound(
        inbound_event(
            type="location",
            body=None,
            location={"latitude": -22.9, "longitude": -43.2, "name": "Cristo", "address": None},
        )
    )
    assert place is not None
    assert place.location == Location(-22.9, -43.2, "Cristo", None)
    bad_place = mapping.inbound(
        inbound_event(type="location", location={"latitude": 91, "longitude": 0})
    )
    assert bad_place is not None
    assert bad_place.location is None
    vcard = (
        "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Ana\\, Souza\r\n"
        "item1.TEL;waid=5511977776666:+55 11 97777-66\r\n 66\r\nEND:VCARD"
    )
    card = mapping.inbound(
        inbound_event(type="multi_vcard", body=None, vcards=[{"name": "A", "vcard": vcard}])
    )
    assert card is not None
    assert card.kind == "contact"
    assert card.contact == Contact("Ana, Souza", ("+55 11 97777-6666",), vcard)
    assert mapping.inbound(inbound_event(type="e2e_notification", body=None)) is None


def test_a_reaction_names_its_message_and_our_own_are_not_reported() -> None:
    theirs = mapping.reaction(
        {
            "id": "false_x_1",
            "msgId": QUOTED,
            "reactionText": "",
            "sender": f"{PEER}@c.us",
            "to": "5511999999999@c.us",
            "timestamp": 1,
            "fromMe": False,
        }
    )
    assert theirs is not None
    assert (theirs.kind, theirs.target, theirs.emoji, theirs.sender) == (
        "reaction",
        QUOTED,
        "",
        PEER,
    )
    assert mapping.reaction({"id": "true_x_1", "msgId": QUOTED, "fromMe": True}) is None


def test_a_poll_has_its_bridge_request() -> None:
    poll = Poll("Almoço?", ("Pizza", "Sushi"), 0)
    called, params = _send_request(outbound("poll", poll=poll, reply_to=QUOTED))
    assert called == "send_poll"
    assert params == {
        "to": f"{PEER}@c.us",
        "name": "Almoço?",
        "options": ["Pizza", "Sushi"],
        "selectableCount": 0,
        "quotedId": QUOTED,
    }
    with pytest.raises(PermanentEngineError, match="needs a poll"):
        _send_request(outbound("poll"))


def test_a_lid_sender_stays_a_lid_with_its_phone_and_a_group_stays_a_group() -> None:
    lid = "123456789012345@lid"
    message = mapping.inbound(inbound_event(**{"from": lid, "body": "oi", "fromPhone": PEER}))
    assert message is not None
    assert (message.sender, message.sender_phone, message.recipient) == (lid, PEER, "5511999999999")
    unsure = mapping.inbound(inbound_event(**{"from": lid, "body": "oi", "fromPhone": "12@x"}))
    assert unsure is not None
    assert unsure.sender_phone is None, "only a phone number is taken"
    group = mapping.inbound(inbound_event(**{"from": "120363012345678901@g.us", "body": "x"}))
    assert group is not None
    assert group.sender == "120363012345678901@g.us"
    plain = mapping.inbound(inbound_event(body="x", fromPhone=PEER))
    assert plain is not None
    assert (plain.sender, plain.sender_phone) == (PEER, None)


def test_an_inbound_poll_and_the_events_besides_messages_are_read_warily() -> None:
    options = ["Hoje", "x" * 500, 7, ""]
    poll = mapping.inbound(
        inbound_event(type="poll_creation", poll={"name": "Q", "options": options})
    )
    assert poll is not None
    assert poll.kind == "poll"
    assert poll.poll == Poll("Q", ("Hoje", "x" * 100), 1)
    assert mapping.edited({"id": "m1", "text": "new", "timestamp": 5}) == MessageEdited(
        "m1", "new", 5
    )
    assert mapping.edited({"id": "m1", "text": None}) is None
    revoked = mapping.revoked({"id": "r", "refId": "m1"})
    assert revoked is not None
    assert revoked.engine_message_id == "m1"
    vote = mapping.vote(
        {"msgId": "p1", "sender": "123456789012345@lid", "selected": ["A", 3], "timestampMs": 9}
    )
    assert vote == PollVote("p1", "123456789012345@lid", ("A",), 9)
    assert mapping.vote({"msgId": "p1", "sender": "nobody", "selected": []}) is None
    call = mapping.call({"id": "c1", "peerJid": f"{PEER}@c.us", "isVideo": True, "offerTime": 2})
    assert call == IncomingCall("c1", PEER, True, 2000)
    assert mapping.call({"id": "c2", "peerJid": f"{PEER}@c.us", "isGroup": True}) is None


def test_directory_answers_from_the_page_are_checked() -> None:
    assert mapping.person({"phone": f"{PEER}@c.us", "lid": "1@lid", "name": "A"}) == Person(
        PEER, None, "A"
    )
    assert mapping.person({"phone": "x", "lid": None}) is None
    missing = mapping.person({"phone": f"{PEER}@c.us", "exists": False})
    assert missing is not None
    assert not missing.on_whatsapp
    members = [{"id": f"{PEER}@c.us", "admin": True}, {"id": "evil"}, "x"]
    group = mapping.group(
        {"id": "120363012345678901@g.us", "name": "G", "creation": 1, "participants": members}
    )
    assert group is not None
    assert group.participants == (Participant(f"{PEER}@c.us", admin=True),)
    assert group.created_at_ms == 1000
    assert mapping.group({"id": "5511@c.us"}) is None
