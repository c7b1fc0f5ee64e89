"""The WPPConnect engine: drives one bridge process (and its Chromium) per session."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
from collections import OrderedDict
from collections.abc import Callable, Coroutine, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zapgate.clock import Clock
from zapgate.engines.base import (
    MEDIA_TYPES,
    Capability,
    EngineError,
    EngineEvent,
    EngineNotReady,
    EngineSink,
    InboundMessage,
    MessageEdited,
    OutboundMessage,
    PermanentEngineError,
    Presence,
    SendReceipt,
    SessionConfig,
    SessionStatus,
    TransientEngineError,
    UnsupportedMessageType,
    WrongEngineState,
)
from zapgate.engines.wppconnect import mapping
from zapgate.engines.wppconnect.directory import WppDirectory
from zapgate.engines.wppconnect.rpc import BridgeError, BridgeGone, BridgeProcess
from zapgate.engines.wppconnect.runtime import BRIDGE_SCRIPT, WppRuntime
from zapgate.errors import InvalidPhoneNumber
from zapgate.files import private_dir
from zapgate.phone import chat_id, normalize_number, number_of

log = logging.getLogger(__name__)

CLOSED_NETWORK_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)
REQUEST_TIMEOUT = 60.0
CLOSE_TIMEOUT = 5.0
BROWSER_EXIT_CHECKS = 40
BROWSER_EXIT_POLL_SECONDS = 0.05
OWN_EDITS_KEPT = 256


@dataclass(frozen=True, slots=True)
class WppOptions:
    """Process-wide settings of the engine."""

    runtime: WppRuntime
    data_dir: Path
    fake_page: Path | None = None
    headless: bool = True
    start_timeout_seconds: float = 60.0
    browser_args: tuple[str, ...] = CLOSED_NETWORK_ARGS
    max_media_bytes: int = mapping.MAX_MEDIA_BYTES
    """Received files larger than this are reported without their bytes (the bridge does not
    download them): ZAPGATE_MEDIA_MAX_BYTES, at most ``mapping.MAX_MEDIA_BYTES``."""
    bridge_restarted: Callable[[str, str], None] | None = None
    """Told (engine name, why) each time a session's bridge is replaced: ``exited`` when it died
    on its own (the session fails and its supervision starts a new one), ``pairing`` when it is
    started again to ask for a pairing code. Metrics."""


class WppConnectEngine(WppDirectory):
    """One WhatsApp Web session in a real Chromium, through @wppconnect-team/wppconnect."""

    name = "wppconnect"
    capabilities = frozenset(
        {
            Capability.TEXT,
            Capability.IMAGE,
            Capability.VIDEO,
            Capability.AUDIO,
            Capability.DOCUMENT,
            Capability.STICKER,
            Capability.LOCATION,
            Capability.CONTACT,
            Capability.REACTION,
            Capability.POLL,
            Capability.EDIT,
            Capability.REVOKE,
            Capability.PRESENCE,
            Capability.CALLS,
            Capability.CHATS,
            Capability.CONTACTS,
            Capability.GROUPS,
            Capability.QR,
            Capability.PAIRING_CODE,
        }
    )

    def __init__(self, options: WppOptions, clock: Clock) -> None:
        self._options = options
        self._clock = clock
        self._sink: EngineSink | None = None
        self._session: SessionConfig | None = None
        self._bridge: BridgeProcess | None = None
        self._link_code: asyncio.Future[str] | None = None
        self._pairing = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._status: SessionStatus | None = None
        self._token_dir: Path | None = None
        self._heard = False
        self._opened = False
        self._finished = False
        self._own_edits: OrderedDict[str, str] = OrderedDict()
        self.browser_pid: int | None = None

    # lifecycle -------------------------------------------------------------------------------

    async def start(self, session: SessionConfig, sink: EngineSink) -> None:
        """Launch the bridge and open WhatsApp Web; progress arrives as events."""
        missing = self._options.runtime.missing()
        if missing:
            raise PermanentEngineError(f"the wppconnect engine cannot run here: {missing}")
        self._sink = sink
        self._session = session
        self._token_dir = _token_dir(self._options.data_dir, session)
        private_dir(self._token_dir, within=self._options.data_dir)
        _clear_profile_locks(self._token_dir / "profile")
        await self._report(SessionStatus.STARTING)
        await self._launch(phone=None)
        self._spawn(self._watch_start())

    async def stop(self) -> None:
        """Close WhatsApp Web and the browser; kill the process group if it lingers."""
        self._finished = True
        bridge, self._bridge = self._bridge, None
        if bridge is not None:
            with contextlib.suppress(BridgeError, BridgeGone, TimeoutError):
                await bridge.request("close", {}, CLOSE_TIMEOUT)
            await bridge.terminate()
        await self._kill_browser()
        await self._cancel_tasks()

    async def logout(self) -> None:
        """Unlink this device, then forget the saved login."""
        if self._bridge is not None and self._status is SessionStatus.WORKING:
            with contextlib.suppress(BridgeError, BridgeGone, TimeoutError):
                await self._bridge.request("logout", {}, REQUEST_TIMEOUT)
        await self.stop()
        if self._token_dir is not None:
            shutil.rmtree(self._token_dir, ignore_errors=True)

    # sending ---------------------------------------------------------------------------------

    async def send(self, message: OutboundMessage) -> SendReceipt:
        """Send through the library; errors become EngineError subclasses."""
        method, params = _send_request(message)
        result = await self._request(method, params)
        if not isinstance(result, dict) or not result.get("id"):
            raise PermanentEngineError(f"{method}: WhatsApp Web gave no message id")
        return SendReceipt(str(result["id"]))

    # MessageActions --------------------------------------------------------------------------

    async def edit(self, chat: str, engine_message_id: str, text: str) -> None:
        """Edit a sent text (the library's ``editMessage``; WhatsApp allows it ~15 minutes)."""
        self._own_edits[engine_message_id] = text
        while len(self._own_edits) > OWN_EDITS_KEPT:
            self._own_edits.popitem(last=False)
        await self._request("edit_message", {"id": engine_message_id, "text": text})

    async def revoke(self, chat: str, engine_message_id: str) -> None:
        """Delete a sent message for everyone (refused when WhatsApp Web would only delete it
        here)."""
        await self._request("revoke_message", {"chatId": chat, "id": engine_message_id})

    async def presence(self, chat: str, state: Presence) -> None:
        """Typing, recording or paused in ``chat`` (a chat WhatsApp Web has open)."""
        await self._request("presence", {"chatId": chat, "state": state.value})

    async def reject_call(self, call_id: str) -> None:
        """Reject a call still ringing."""
        await self._request("reject_call", {"id": call_id})

    async def _request(
        self,
        method: str,
        params: dict[str, Any],
        errors: Mapping[str, type[EngineError]] | None = None,
    ) -> Any:
        """One bridge request while connected; its errors as EngineErrors (``errors``: by the
        bridge's error code)."""
        if self._bridge is None or self._status is not SessionStatus.WORKING:
            raise EngineNotReady("WhatsApp Web is not connected")
        with _translated(method, errors or {}):
            return await self._bridge.request(method, params, REQUEST_TIMEOUT)

    async def request_pairing_code(self, phone: str) -> str:
        """A code to type on the phone instead of scanning the QR (replacing the last one).

        WhatsApp Web asks for it as it opens with a phone number (the library's
        ``phoneNumber`` option), so the bridge is started again with ``phone``.
        """
        number = _number(phone, "the phone number")
        async with self._pairing:
            if self._status is not SessionStatus.SCAN_QR_CODE or self._finished:
                raise WrongEngineState(f"no pairing code while {self._status}")
            code: asyncio.Future[str] = asyncio.get_running_loop().create_future()
            self._link_code = code
            try:
                await self._relaunch(number)
                async with asyncio.timeout(self._options.start_timeout_seconds):
                    return await code
            except TimeoutError:
                raise TransientEngineError("WhatsApp Web gave no pairing code in time") from None
            finally:
                self._link_code = None

    async def fake(self, fn: str, *args: Any) -> Any:
        """Call a hook of the fake WhatsApp Web page (tests only)."""
        if self._bridge is None:
            raise EngineNotReady("the bridge is not running")
        return await self._bridge.request("fake", {"fn": fn, "args": list(args)}, REQUEST_TIMEOUT)

    # what happens ----------------------------------------------------------------------------

    async def _launch(self, phone: str | None) -> None:
        """Start a bridge and open WhatsApp Web in it (asking for a link code for ``phone``)."""
        assert self._session is not None
        owner: list[BridgeProcess] = []

        async def on_event(name: str, data: dict[str, Any]) -> None:
            if owner and owner[0] is self._bridge:  # a replaced bridge is not heard
                await self._on_event(name, data)

        bridge = BridgeProcess(
            self._options.runtime.node, BRIDGE_SCRIPT, on_event, self._session.name
        )
        owner.append(bridge)
        self._bridge = bridge
        await bridge.spawn()
        self._spawn(self._open(bridge, self._session, phone))
        self._spawn(self._watch_exit(bridge))

    async def _relaunch(self, phone: str) -> None:
        """Replace the bridge (and its browser) with one that logs in by code for ``phone``."""
        old, self._bridge = self._bridge, None
        if old is not None:
            with contextlib.suppress(BridgeError, BridgeGone, TimeoutError):
                await old.request("close", {}, CLOSE_TIMEOUT)
            await old.terminate()
        await self._kill_browser()
        if self._finished:
            raise EngineNotReady("the session is stopping")
        assert self._token_dir is not None
        _clear_profile_locks(self._token_dir / "profile")
        self._count_restart("pairing")
        await self._launch(phone)

    async def _open(self, bridge: BridgeProcess, session: SessionConfig, phone: str | None) -> None:
        assert self._token_dir is not None
        params = {
            "session": session.name,
            "tokenDir": str(self._token_dir),
            "executablePath": self._options.runtime.chromium,
            "browserArgs": list(self._options.browser_args),
            "headless": self._options.headless,
            "fakePage": str(self._options.fake_page) if self._options.fake_page else None,
            "phoneNumber": phone,
            "maxMediaBytes": min(self._options.max_media_bytes, mapping.MAX_MEDIA_BYTES),
        }
        try:
            await bridge.request("start", params, None)
        except BridgeError as error:
            if bridge is self._bridge:
                await self._fail(f"WhatsApp Web could not be opened: {error}")
            return
        except BridgeGone:
            return  # _watch_exit reports it
        if bridge is self._bridge:
            await self._connected(bridge)

    async def _connected(self, bridge: BridgeProcess) -> None:
        assert self._sink is not None
        try:
            device = await bridge.request("get_host_device", {}, REQUEST_TIMEOUT)
        except (BridgeError, BridgeGone, TimeoutError) as error:
            log.warning("could not read the host device: %s", error)
            device = {}
        await self._sink.me(_account(device))
        self._opened = True
        await self._report(SessionStatus.WORKING)

    async def _on_event(self, name: str, data: dict[str, Any]) -> None:
        self._heard = True
        sink = self._sink
        if sink is None or self._finished:
            return
        if name == "qr":
            await self._report(SessionStatus.SCAN_QR_CODE)
            await sink.qr(str(data["raw"]))
        elif name == "status_find":
            found = mapping.STATUS_FIND.get(str(data.get("status")))
            if found is not None:
                await self._report(*found)
        elif name == "state":
            await self._report(*mapping.status_of_state(str(data.get("state"))))
        elif name == "message":
            await self._inbound(sink, mapping.inbound(data))
        elif name == "reaction":
            await self._inbound(sink, mapping.reaction(data))
        elif name in EVENTS:
            await self._event(sink, name, data)
        elif name == "link_code":
            if self._link_code is not None and not self._link_code.done():
                self._link_code.set_result(str(data["code"]))
        elif name == "ack":
            await self._ack(data)
        elif name == "browser":
            self.browser_pid = int(data["pid"])
        elif name == "fatal":  # not awaited here: failing stops the reader this runs on
            self._spawn(self._fail(str(data.get("reason", "the bridge failed"))))
        else:
            await sink.heartbeat()

    async def _event(self, sink: EngineSink, name: str, data: dict[str, Any]) -> None:
        event: EngineEvent | None = EVENTS[name](data)
        if isinstance(event, MessageEdited) and data.get("fromMe") and self._own_edit(event):
            event = None  # this engine's own edit, stored already by whoever asked for it
        if event is None:
            await sink.heartbeat()
        else:
            await sink.event(event)

    def _own_edit(self, edit: MessageEdited) -> bool:
        return self._own_edits.pop(edit.engine_message_id, None) == edit.text

    async def _inbound(self, sink: EngineSink, message: InboundMessage | None) -> None:
        if message is None:
            await sink.heartbeat()
        else:
            await sink.message(message)

    async def _ack(self, data: dict[str, Any]) -> None:
        assert self._sink is not None
        status = mapping.ACKS.get(int(data.get("ack", 0)))
        if status is not None:
            await self._sink.ack(str(data["id"]), status)
        elif int(data.get("ack", 0)) < 0:
            log.warning("WhatsApp reported an error ack for %s", data.get("id"))

    async def _report(self, status: SessionStatus, reason: str | None = None) -> None:
        if self._sink is None or self._finished:
            return
        if status is self._status and status is not SessionStatus.FAILED:
            return
        if status is SessionStatus.WORKING and not self._opened:
            return  # the first WORKING comes with the account, once the start request answers
        self._status = status
        await self._sink.status(status, reason)

    async def _fail(self, reason: str) -> None:
        """Clean up first (bridge and browser gone), then report FAILED with ``reason``."""
        if self._finished:
            return
        self._finished = True
        bridge, self._bridge = self._bridge, None
        if bridge is not None:
            await bridge.terminate()
        await self._kill_browser()
        if self._link_code is not None and not self._link_code.done():
            self._link_code.set_exception(PermanentEngineError(reason))
        if self._sink is not None:
            self._status = SessionStatus.FAILED
            await self._sink.status(SessionStatus.FAILED, reason)

    async def _watch_exit(self, bridge: BridgeProcess) -> None:
        await bridge.exited.wait()
        if self._finished or bridge is not self._bridge:
            return
        self._count_restart("exited")
        tail = " | ".join(list(bridge.stderr_tail)[-3:])
        await self._fail(f"the bridge exited with code {bridge.returncode}: {tail}".rstrip(": "))

    def _count_restart(self, reason: str) -> None:
        if self._options.bridge_restarted is not None:
            self._options.bridge_restarted(self.name, reason)

    async def _watch_start(self) -> None:
        await self._clock.sleep(self._options.start_timeout_seconds)
        if not self._heard and not self._finished:
            seconds = self._options.start_timeout_seconds
            await self._fail(f"WhatsApp Web gave no sign of life within {seconds:g} s")

    async def _kill_browser(self) -> None:
        pid, self.browser_pid = self.browser_pid, None
        if pid is None:
            return
        _kill_group(pid)
        for _ in range(BROWSER_EXIT_CHECKS):
            if not _alive(pid):
                return
            await asyncio.sleep(BROWSER_EXIT_POLL_SECONDS)
        log.warning("Chromium %d did not exit after SIGKILL", pid)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _cancel_tasks(self) -> None:
        current = asyncio.current_task()
        tasks = [task for task in self._tasks if task is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def forget_tenant(data_dir: Path, tenant: str) -> None:
    """Delete the login folders of ``tenant``'s sessions (the tenant is being deleted)."""
    root = (data_dir / "wppconnect").resolve()
    folder = (root / tenant).resolve()
    if folder.parent == root:
        shutil.rmtree(folder, ignore_errors=True)


def _clear_profile_locks(profile: Path) -> None:
    """Remove the locks a Chromium left in the session's profile when it died with its node
    (``Singleton*``, naming that host and process): Chromium on another node (cluster mode: a
    session taken over from a dead node, its folder on a shared volume) refuses a locked
    profile. Only this engine runs the session now (its lease, or the one process in single-node
    mode), so no live browser holds them."""
    if not profile.is_dir():
        return
    for lock in profile.glob("Singleton*"):
        try:
            lock.unlink()
        except OSError as error:
            log.warning("could not remove %s: %s", lock, error)


def _token_dir(data_dir: Path, session: SessionConfig) -> Path:
    """The session's login folder, refusing any name that would leave its tenant's folder."""
    root = (data_dir / "wppconnect" / session.tenant).resolve()
    folder = (root / session.name).resolve()
    if folder.parent != root:
        raise PermanentEngineError(f"session name {session.name!r} cannot be a folder name")
    return folder


EVENTS: dict[str, Callable[[dict[str, Any]], EngineEvent | None]] = {
    "edited": mapping.edited,
    "revoked": mapping.revoked,
    "poll_vote": mapping.vote,
    "incoming_call": mapping.call,
}
"""Bridge events reported through ``EngineSink.event``, each with its reader (None: skipped)."""


@contextlib.contextmanager
def _translated(method: str, errors: Mapping[str, type[EngineError]]) -> Iterator[None]:
    """Bridge failures as EngineErrors: the one place they are translated (``errors`` by the
    bridge's error code, the rest by whether the bridge calls them transient)."""
    try:
        yield
    except BridgeGone as error:
        raise EngineNotReady(str(error)) from None
    except TimeoutError:
        raise TransientEngineError(f"{method} timed out") from None
    except BridgeError as error:
        if error.code is not None and error.code in errors:
            raise errors[error.code](str(error)) from None
        kind = TransientEngineError if error.transient else PermanentEngineError
        raise kind(str(error)) from None


FILE_KINDS = {"image": "image", "video": "video", "document": "document", "sticker": "sticker"}
"""zapgate's media types to the bridge's file kinds (audio is ``voice`` or ``audio``)."""


def _send_request(message: OutboundMessage) -> tuple[str, dict[str, Any]]:
    """The bridge method and params that send ``message`` (see PROTOCOL.md)."""
    to = chat_id(message.to)
    quoted = {"quotedId": message.reply_to} if message.reply_to else {}
    kind = message.kind
    if kind == "text":
        text = {"text": message.text or "", "linkPreview": message.link_preview}
        return "send_text", {"to": to, **text, **quoted}
    if kind in MEDIA_TYPES:
        return "send_file", {"to": to, **_file(message), **quoted}
    if kind == "location":
        return "send_location", {"to": to, **_place(message), **quoted}
    if kind == "contact":
        return "send_contact", {"to": to, **_card(message), **quoted}
    if kind == "poll":
        return "send_poll", {"to": to, **_poll(message), **quoted}
    if kind == "reaction":
        if not message.target:
            raise PermanentEngineError("a reaction needs the message it reacts to")
        return "react", {"messageId": message.target, "emoji": message.emoji or ""}
    raise UnsupportedMessageType(f"the wppconnect engine cannot send {kind} messages")


def _file(message: OutboundMessage) -> dict[str, Any]:
    media = message.media
    if media is None:
        raise PermanentEngineError(f"a {message.kind} message needs a file")
    kind = FILE_KINDS.get(message.kind) or ("voice" if message.voice else "audio")
    params: dict[str, Any] = {"base64": media.data_uri(), "kind": kind}
    if media.filename:
        params["filename"] = media.filename
    if message.text and kind != "sticker":
        params["caption"] = message.text
    return params


def _poll(message: OutboundMessage) -> dict[str, Any]:
    poll = message.poll
    if poll is None:
        raise PermanentEngineError("a poll message needs a poll")
    return {
        "name": poll.name,
        "options": list(poll.options),
        "selectableCount": poll.selectable_count,
    }


def _place(message: OutboundMessage) -> dict[str, Any]:
    place = message.location
    if place is None:
        raise PermanentEngineError("a location message needs a location")
    params: dict[str, Any] = {"latitude": place.latitude, "longitude": place.longitude}
    if place.name:
        params["name"] = place.name
    if place.address:
        params["address"] = place.address
    return params


def _card(message: OutboundMessage) -> dict[str, Any]:
    """WhatsApp Web writes the vCard itself, from a WhatsApp id and a name: the first phone
    number is that id (the other numbers, and the rest of our vCard, are not sent)."""
    card = message.contact
    if card is None or not card.phones:
        raise PermanentEngineError("a contact message needs a contact with a phone number")
    return {"contactId": chat_id(_number(card.phones[0], "the contact's phone")), "name": card.name}


def _number(phone: str, what: str) -> str:
    try:
        return normalize_number(phone)
    except InvalidPhoneNumber as error:
        raise PermanentEngineError(f"{what}: {error}") from None


def _account(device: Any) -> dict[str, Any]:
    if not isinstance(device, dict):
        return {}
    wid = device.get("id") or device.get("wid") or {}
    user = wid.get("user") if isinstance(wid, dict) else number_of(str(wid))
    return {
        "id": str(user or ""),
        "pushname": device.get("pushname"),
        "platform": device.get("platform"),
    }


def _alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(") ", 1)[1][:1] != "Z"
    except OSError:
        return False


def _kill_group(pid: int) -> None:
    """SIGKILL the browser's process group (puppeteer launches it detached) and the process."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGKILL)
