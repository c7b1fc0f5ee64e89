"""The dashboard as a user sees it: sign in, sessions with a live QR, a conversation with
statuses moving live, a failed webhook delivery retried, a sink and a bot with their deliveries
(a chat taken over given back to the bot), a read-only key, sign out."""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.conftest import ADMIN_KEY, free_port, redis_reason, require_service
from tests.dashboard.conftest import SERVER_ENV, Receiver, shot
from tests.support.cluster import run_in_a_thread
from tests.support.process import ServerProcess

DOCS = shot.__globals__["ARTIFACTS"].parents[1] / "docs"
NUMBER = "5511987654321"


def sign_in(page: Page, key: str = ADMIN_KEY) -> None:
    page.goto("/")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    expect(page.get_by_role("status").filter(has_text="Live")).to_be_visible()


def working_session(api: httpx.Client, name: str) -> None:
    """A simulator session, paired (the API's view: polled, across processes)."""
    created = api.post("/api/v1/sessions", json={"name": name})
    assert created.status_code == 201, created.text
    deadline = time.monotonic() + 15
    while api.get(f"/api/v1/sessions/{name}").json()["status"] != "WORKING":
        assert time.monotonic() < deadline, "the session never paired"
        time.sleep(0.05)


def record_statuses(page: Page) -> None:
    """Every status text a message shows, in order, however briefly (a MutationObserver)."""
    page.evaluate(
        """() => {
        window.seenStatuses = {};
        const note = () => document.querySelectorAll('.messages li').forEach((li) => {
          const status = li.querySelector('.status');
          if (!status) return;
          const text = li.firstElementChild.textContent;
          const list = (window.seenStatuses[text] ||= []);
          if (list[list.length - 1] !== status.textContent) list.push(status.textContent);
        });
        new MutationObserver(note).observe(document.body,
          { subtree: true, childList: true, characterData: true });
      }"""
    )


def test_sign_in_create_a_session_see_the_qr_live_scan_it_and_sign_out(page: Page) -> None:
    sign_in(page)
    form = page.get_by_role("form", name="New session")
    form.get_by_label("Name").fill("shop")
    form.get_by_label("Engine").select_option("simulator")
    form.get_by_label("Config (JSON)").fill('{"pairing_seconds": 600, "qr_refresh_seconds": 1}')
    form.get_by_role("button", name="Create session").click()
    card = page.get_by_role("article", name="Session shop")
    expect(card.locator(".status")).to_have_text("SCAN_QR_CODE")
    qr = card.get_by_role("img", name="QR code for shop")
    expect(qr).to_have_attribute("src", _data_png())
    first = qr.get_attribute("src")
    expect(qr).not_to_have_attribute("src", first or "")  # a session.qr event: a new code
    shot(page, "sessions-qr")
    card.get_by_role("button", name="Simulate scan").click()
    expect(card.locator(".status")).to_have_text("WORKING")
    expect(qr).to_have_count(0)
    expect(card).to_contain_text("health ok")
    expect(card).to_contain_text("whatsapp · simulator")  # its channel and engine
    copy = shot(page, "sessions")
    shutil.copyfile(copy, DOCS / "dashboard-sessions.png")
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    assert page.evaluate("() => sessionStorage.length") == 0
    assert ADMIN_KEY not in page.url


def _data_png() -> Any:
    return re.compile(r"^data:image/png;base64,")


def test_a_text_goes_sent_delivered_read_live_and_an_inbound_message_appears(
    page: Page, api: httpx.Client
) -> None:
    working_session(api, "talk")
    sign_in(page)
    page.get_by_role("link", name="Conversations", exact=True).click()
    page.get_by_role("combobox", name="Session").select_option("talk")
    record_statuses(page)
    composer = page.get_by_role("form", name="Send a message")
    composer.get_by_label("To").fill(NUMBER)
    composer.get_by_label("Message").fill("Seu pedido saiu para entrega")
    composer.get_by_role("button", name="Send").click()
    sent = page.locator(".messages li").filter(has_text="Seu pedido saiu para entrega")
    expect(sent.locator(".status")).to_have_text("read")
    seen = page.evaluate("() => window.seenStatuses['Seu pedido saiu para entrega']")
    assert [s for s in seen if s in ("sent", "delivered", "read")] == ["sent", "delivered", "read"]
    received = api.post(
        "/api/v1/sessions/talk/simulate/inbound", json={"from": NUMBER, "text": "Obrigado!"}
    )
    assert received.status_code == 201, received.text
    inbound = page.locator(".messages li.in").filter(has_text="Obrigado!")
    expect(inbound).to_contain_text("whatsapp")  # each message's channel
    copy = shot(page, "conversation")
    shutil.copyfile(copy, DOCS / "dashboard-conversation.png")


def test_a_failed_webhook_delivery_shows_and_is_retried(
    page: Page, api: httpx.Client, receiver: Receiver
) -> None:
    working_session(api, "hooks")
    made = api.post(
        "/api/v1/webhooks",
        json={"url": receiver.url, "events": ["message.received"], "sessions": ["hooks"]},
    )
    assert made.status_code == 201, made.text
    inbound = {"from": NUMBER, "text": "vai falhar"}
    assert api.post("/api/v1/sessions/hooks/simulate/inbound", json=inbound).status_code == 201
    sign_in(page)
    page.get_by_role("link", name="Webhooks").click()
    hook = page.get_by_role("article", name=f"Webhook {receiver.url}")
    hook.get_by_role("button", name="Deliveries").click()
    delivery = hook.get_by_role("table").locator("tbody tr").first
    expect(delivery.locator(".status")).to_have_text("failed")
    expect(delivery).to_contain_text("500")
    expect(delivery).to_contain_text("receiver down for maintenance")
    expect(hook).to_contain_text("failed 1")
    shot(page, "webhook-failed")
    receiver.status = 200
    delivery.get_by_role("button", name="Retry").click()
    expect(delivery.locator(".status")).to_have_text("succeeded")
    expect(hook).to_contain_text("failed 0")
    assert receiver.received == 3


@pytest.mark.redis
def test_a_sink_and_a_bot_show_their_deliveries_and_a_chat_goes_back_to_the_bot(
    page: Page, api: httpx.Client, receiver: Receiver
) -> None:
    require_service(run_in_a_thread(redis_reason, 10))
    working_session(api, "bots")
    stream = "zapgate-dashboard-{session}"
    sink = api.post(
        "/api/v1/sinks",
        json={
            "type": "redis",
            "url": "redis://127.0.0.1:6379/15",
            "stream": stream,
            "maxlen": 100,
            "sessions": ["bots"],
        },
    )
    assert sink.status_code == 201, sink.text
    bot_at = "/api/v1/sessions/bots/integrations/bot"
    bot = api.put(bot_at, json={"url": receiver.url, "timeout_seconds": 5})
    assert bot.status_code == 200, bot.text
    taken = "5511900000001"
    assert api.post(f"{bot_at}/chats/{taken}/pause").status_code == 200
    inbound = {"from": NUMBER, "text": "preciso de ajuda"}
    assert api.post("/api/v1/sessions/bots/simulate/inbound", json=inbound).status_code == 201
    try:
        sign_in(page)
        page.get_by_role("link", name="Integrations").click()
        card = page.get_by_role("article", name="Sink redis redis://127.0.0.1:6379/15")
        expect(card).to_contain_text(f"stream {stream}")
        card.get_by_role("button", name="Deliveries").click()
        published = card.get_by_role("table").locator("tbody tr").first
        expect(published.locator(".status")).to_have_text("succeeded")
        expect(card).to_contain_text("failed 0")
        helper = page.get_by_role("article", name="Bot of bots")
        expect(helper).to_contain_text("failed 1")  # the bot answered 500, twice
        helper.get_by_role("button", name="Deliveries").click()
        asked = helper.get_by_role("table", name=re.compile("^Deliveries")).locator("tbody tr")
        expect(asked.first).to_contain_text("receiver down for maintenance")
        expect(asked.first.get_by_role("button", name="Retry")).to_have_count(0)
        human = helper.get_by_role("table", name="Chats taken over from the bot of bots")
        expect(human).to_contain_text(f"{taken}@c.us")
        shot(page, "integrations")
        human.get_by_role("button", name="Give back to the bot").click()
        expect(human).to_have_count(0)
        assert api.get(f"{bot_at}/chats").json()["data"] == []
        card.get_by_role("button", name="Pause").click()
        expect(card.locator(".status").first).to_have_text("disabled")
        assert api.get(f"/api/v1/sinks/{sink.json()['id']}").json()["active"] is False
    finally:
        api.delete(f"/api/v1/sinks/{sink.json()['id']}")
        api.delete(bot_at)


def test_a_read_key_sees_no_write_buttons_and_the_api_refuses_writes(
    page: Page, api: httpx.Client, server: ServerProcess
) -> None:
    working_session(api, "watch")
    issued = api.post("/api/v1/keys", json={"name": "viewer", "scopes": ["read"]})
    assert issued.status_code == 201, issued.text
    read_key = issued.json()["key"]
    sign_in(page, read_key)
    expect(page.get_by_text("(read only)")).to_be_visible()
    card = page.get_by_role("article", name="Session watch")
    expect(card.locator(".status")).to_have_text("WORKING")
    assert page.get_by_role("button").all_inner_texts() == ["Sign out"]
    expect(page.get_by_role("form", name="New session")).to_have_count(0)
    expect(page.get_by_role("link", name="Webhooks")).to_have_count(0)
    expect(page.get_by_role("link", name="Keys")).to_have_count(0)
    page.get_by_role("link", name="Conversations", exact=True).click()
    page.get_by_role("combobox", name="Session").select_option("watch")
    expect(page.get_by_role("region", name="Messages")).to_be_visible()
    expect(page.get_by_role("form", name="Send a message")).to_have_count(0)
    headers = {"Authorization": f"Bearer {read_key}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=10) as reader:
        for path, body in (
            ("/api/v1/sessions/watch/stop", None),
            ("/api/v1/sessions/watch/messages", {"to": NUMBER, "type": "text", "text": "x"}),
            ("/api/v1/sessions", {"name": "sneaky"}),
            ("/api/v1/webhooks", {"url": "https://example.com/hook"}),
        ):
            refused = reader.post(path, json=body)
            assert refused.status_code == 403, (path, refused.text)
    assert api.get("/api/v1/sessions/watch").json()["status"] == "WORKING"


def test_the_event_monitor_follows_filters_pauses_and_jumps_back(
    page: Page, api: httpx.Client
) -> None:
    working_session(api, "monitor")
    sign_in(page)
    page.get_by_role("link", name="Events", exact=True).click()
    events = page.get_by_role("table", name="Events")
    expect(events).to_be_visible()

    def inbound(text: str) -> None:
        body = {"from": NUMBER, "text": text}
        sent = api.post("/api/v1/sessions/monitor/simulate/inbound", json=body)
        assert sent.status_code == 201, sent.text

    inbound("primeira")
    first = events.locator("tr").filter(has_text="primeira")
    expect(first).to_contain_text("message.received")
    filters = page.get_by_role("form", name="Event filters")
    filters.get_by_label("Type").select_option("session.status")
    expect(first).to_have_count(0)
    filters.get_by_label("Type").select_option("")
    filters.get_by_label("Session", exact=True).fill("monitor")
    expect(first).to_have_count(1)
    filters.get_by_role("button", name="Pause").click()
    inbound("segunda")
    resume = filters.get_by_role("button", name="Resume (1 new)")
    expect(resume).to_be_visible()
    expect(events.locator("tr").filter(has_text="segunda")).to_have_count(0)
    resume.click()
    expect(events.locator("tr").filter(has_text="segunda")).to_have_count(1)
    filters.get_by_label("Session", exact=True).fill("")
    filters.get_by_label("From seq").fill("1")
    filters.get_by_role("button", name="Jump").click()
    expect(
        events.locator("tbody tr td:first-child").filter(has_text=re.compile("^1$"))
    ).to_be_visible()


def test_the_operator_makes_a_tenant_whose_key_sees_only_its_own_world(
    page: Page, api: httpx.Client
) -> None:
    sign_in(page)
    page.get_by_role("link", name="Tenants", exact=True).click()
    form = page.get_by_role("form", name="New tenant")
    form.get_by_label("Id").fill("acme")
    form.get_by_role("button", name="Create tenant").click()
    row = page.get_by_role("row", name="Tenant acme")
    expect(row.locator(".status")).to_have_text("active")
    row.get_by_role("button", name="Issue admin key").click()
    key = row.get_by_role("status").locator(".mono").inner_text()
    assert key.startswith("zg_")
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, key)
    expect(page.get_by_text("No sessions yet.")).to_be_visible()
    expect(page.get_by_role("link", name="Tenants", exact=True)).to_have_count(0)
    expect(page.get_by_role("article")).to_have_count(0)  # none of the default tenant's
    assert api.get("/api/v1/tenants/acme").json()["status"] == "active"


def test_keyboard_sign_in_labelled_controls_and_a_file_sent_from_the_composer(
    page: Page, api: httpx.Client
) -> None:
    working_session(api, "files")
    page.goto("/")
    page.keyboard.press("Tab")
    page.keyboard.type(ADMIN_KEY)
    page.keyboard.press("Enter")
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    page.goto("/#/chats/files")
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll('input, select, textarea, button')]
          .filter((el) => !(el.closest('label') || el.getAttribute('aria-label')
                            || (el.tagName === 'BUTTON' && el.textContent.trim())))
          .map((el) => el.outerHTML)"""
    )
    assert unlabelled == []
    composer = page.get_by_role("form", name="Send a message")
    composer.get_by_label("To").fill(NUMBER)
    composer.get_by_label("Message").fill("o boleto")
    composer.get_by_label("File").set_input_files(
        files=[{"name": "boleto.pdf", "mimeType": "application/pdf", "buffer": PDF}]
    )
    composer.get_by_role("button", name="Send").click()
    sent = page.locator(".messages li").filter(has_text="[document] o boleto")
    expect(sent.locator(".status")).to_have_text("read")
    stored = api.get("/api/v1/sessions/files/messages", params={"limit": 1}).json()["data"][0]
    assert stored["type"] == "document"
    assert stored["media"]["filename"] == "boleto.pdf"


def test_a_refused_key_is_told_so_and_nothing_is_kept(page: Page, console: Any) -> None:
    page.goto("/dashboard")
    page.get_by_label("API key").fill("zg_nosuchkey0001_" + "x" * 32)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("That key was not accepted.")
    assert page.evaluate("() => sessionStorage.length") == 0
    assert [e for e in console.errors if "401" not in e] == []
    console.errors.clear()  # the browser reports the refused call itself; nothing else went wrong


PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


def test_the_metrics_panel_shows_the_outbox_and_messages_per_minute(
    page: Page, api: httpx.Client
) -> None:
    parked = api.post("/api/v1/sessions", json={"name": "parked", "start": False})
    assert parked.status_code == 201, parked.text
    for text in ("um", "dois"):
        queued = api.post(
            "/api/v1/sessions/parked/messages", json={"to": NUMBER, "type": "text", "text": text}
        )
        assert queued.status_code == 202, queued.text
    working_session(api, "busy")
    sign_in(page)
    page.get_by_role("link", name="Metrics", exact=True).click()
    panel = page.get_by_role("region", name="Metrics")
    expect(panel.get_by_role("group", name="Outbox depth").locator("b")).to_have_text("2")
    out = panel.get_by_role("group", name="Messages out / min").locator("b")
    expect(out).to_have_text("0")
    sent = api.post("/api/v1/sessions/busy/messages", json={"to": NUMBER, "text": "vai"})
    assert sent.status_code == 202, sent.text
    expect(out).to_have_text("1")


def test_after_a_server_restart_the_stream_resumes_with_nothing_missed_or_repeated(
    browser: Any, tmp_path: Path
) -> None:
    server = ServerProcess(tmp_path, free_port(), ADMIN_KEY)
    server.start(**SERVER_ENV)
    context = browser.new_context(base_url=server.url)
    errors: list[str] = []
    try:
        page = context.new_page()
        page.on("console", lambda m: m.type == "error" and errors.append(m.text))
        page.on("pageerror", lambda error: errors.append(str(error)))
        sign_in(page)
        page.get_by_role("link", name="Events", exact=True).click()
        rows = page.get_by_role("table", name="Events").locator("tbody tr")
        headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
        inbound = {"from": NUMBER, "text": "antes"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=10) as api:
            assert api.post("/api/v1/sessions/default/simulate/inbound", json=inbound).is_success
            expect(rows.filter(has_text="antes")).to_have_count(1)
            server.kill()
            expect(page.get_by_role("status").filter(has_text="Reconnecting")).to_be_visible()
            server.start(**SERVER_ENV)  # the default session starts again: events meanwhile
            expect(page.get_by_role("status").filter(has_text="Live")).to_be_visible()
            inbound["text"] = "depois"
            assert api.post("/api/v1/sessions/default/simulate/inbound", json=inbound).is_success
            expect(rows.filter(has_text="depois")).to_have_count(1)
            shown = [int(seq) for seq in rows.locator("td:first-child").all_inner_texts()]
            first = min(shown)
            logged = api.get("/api/v1/events", params={"after": first - 1, "limit": 1000}).json()
        assert sorted(shown) == [event["seq"] for event in logged["data"]]
        assert len(shown) == len(set(shown))
        assert "session.status" in page.get_by_role("table", name="Events").inner_text()
    finally:
        context.close()
        server.stop()
    # the browser reports the dropped stream and the refused reconnects; nothing else went wrong
    assert [e for e in errors if "net::ERR" not in e and "Failed to load" not in e] == []
