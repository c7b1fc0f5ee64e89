"""The n8n workflow of ``docs/integrations/n8n.json``, checked against the running app.

Its HTTP calls are operations of ``/openapi.json`` whose request schemas take the bodies it
builds (and the app answers them), its filter names real event types, and its Code node,
run in Node the way n8n runs it, verifies zapgate's real signed deliveries and refuses
tampered, stale and foreign ones. n8n itself is not run: its expressions are JavaScript
between ``{{ }}``, evaluated here against a real event.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from tests.conftest import RunningServer, make_settings, require_service
from tests.support.receiver import Receiver
from tests.test_messages_api import wait_working
from zapgate.config import Settings
from zapgate.webhooks import signing

WORKFLOW = Path(__file__).resolve().parent.parent / "docs" / "integrations" / "n8n.json"
NODE = shutil.which("node")
ZAPGATE_URL = "{{ $env.ZAPGATE_URL }}"
EXPRESSION = re.compile(r"\{\{.*?\}\}", re.DOTALL)
N8N_TYPES = {
    "n8n-nodes-base.webhook",
    "n8n-nodes-base.code",
    "n8n-nodes-base.if",
    "n8n-nodes-base.httpRequest",
    "n8n-nodes-base.respondToWebhook",
}
JSON_TYPE = "application/json"
Spec = dict[str, Any]
Node = dict[str, Any]

HARNESS = r"""
// Runs a Code node's JavaScript as n8n does (an async function body with $input, $env and
// this.helpers), or resolves n8n expressions ("=" then text with {{ JavaScript }}).
const input = JSON.parse(require('fs').readFileSync(0, 'utf8'));

function resolve(value, $json, $env) {
  if (typeof value !== 'string' || !value.startsWith('=')) return value;
  const text = value.slice(1);
  const run = (expr) => new Function('$json', '$env', `return (${expr});`)($json, $env);
  const whole = text.match(/^\{\{([\s\S]*)\}\}$/);
  if (whole && !whole[1].includes('}}')) return run(whole[1]);
  return text.replace(/\{\{([\s\S]*?)\}\}/g, (_, expr) => String(run(expr)));
}

async function main() {
  if (input.action === 'code') {
    const items = input.items;
    const $input = { all: () => items, first: () => items[0] };
    const helpers = {
      getBinaryDataBuffer: async (index, name) =>
        Buffer.from(items[index].binary[name].data, 'base64'),
    };
    const AsyncFunction = Object.getPrototypeOf(async function () {}).constructor;
    const body = new AsyncFunction('$input', '$env', 'require', input.code);
    try {
      return { ok: true, items: await body.call({ helpers }, $input, input.env, require) };
    } catch (error) {
      return { ok: false, error: String(error && error.message) };
    }
  }
  const values = {};
  for (const [name, value] of Object.entries(input.values)) {
    values[name] = resolve(value, input.json, input.env);
  }
  return { ok: true, values };
}

main().then((result) => process.stdout.write(JSON.stringify(result)));
"""


@pytest.fixture
def server_settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, webhook_allowlist="127.0.0.1", webhook_timeout_seconds=5)


@pytest.fixture
def workflow() -> dict[str, Any]:
    return dict(json.loads(WORKFLOW.read_text(encoding="utf-8")))


@pytest.fixture
async def spec(api: httpx.AsyncClient) -> Spec:
    response = await api.get("/openapi.json")
    assert response.status_code == 200
    return dict(response.json())


def node_run(request: dict[str, Any]) -> dict[str, Any]:
    """The harness's answer to ``request``, run by Node."""
    require_service(None if NODE else "Node.js (node) is not installed")
    assert NODE is not None
    done = subprocess.run(
        [NODE, "-e", HARNESS],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return dict(json.loads(done.stdout))


def nodes_of(workflow: dict[str, Any], node_type: str) -> list[Node]:
    return [node for node in workflow["nodes"] if node["type"] == node_type]


def the_node(workflow: dict[str, Any], node_type: str) -> Node:
    found = nodes_of(workflow, node_type)
    assert len(found) == 1, (node_type, found)
    return found[0]


def resolve(spec: Spec, schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def operation_of(spec: Spec, method: str, path: str) -> dict[str, Any]:
    """The operation whose path template matches ``path`` (its placeholders as ``{}``)."""
    wanted = path.strip("/").split("/")
    found = []
    for template, item in spec["paths"].items():
        parts = template.strip("/").split("/")
        same = len(parts) == len(wanted) and all(
            part == want or (part.startswith("{") and want == "{}")
            for part, want in zip(parts, wanted, strict=True)
        )
        if same and method.lower() in item:
            found.append(item[method.lower()])
    assert len(found) == 1, f"{method} {path} is not one operation of /openapi.json"
    return dict(found[0])


def event_types(spec: Spec) -> set[str]:
    """The event types a webhook subscription can ask for, from its request schema."""
    body = spec["paths"]["/api/v1/webhooks"]["post"]["requestBody"]
    schema = resolve(spec, body["content"]["application/json"]["schema"])
    items = resolve(spec, schema["properties"]["events"]["items"])
    assert items.get("enum"), items
    return set(items["enum"])


async def received_event(api: httpx.AsyncClient, text: str) -> dict[str, Any]:
    """The ``message.received`` event of a message the simulated phone gets now."""
    sent = await api.post(
        "/api/v1/sessions/default/simulate/inbound",
        json={"from": "5511988887777", "text": text},
    )
    assert sent.status_code == 201, sent.text
    page = await api.get("/api/v1/events", params={"after": 0, "limit": 500})
    found = [
        event
        for event in page.json()["data"]
        if event["type"] == "message.received" and event["payload"]["id"] == sent.json()["id"]
    ]
    assert len(found) == 1, page.text
    return dict(found[0])


def delivery_item(headers: dict[str, str], body: bytes) -> dict[str, Any]:
    """What n8n's Webhook node (raw body on) hands the next node."""
    return {
        "json": {"headers": {k.lower(): v for k, v in headers.items()}, "body": json.loads(body)},
        "binary": {"data": {"data": base64.b64encode(body).decode(), "mimeType": JSON_TYPE}},
    }


def verify(workflow: dict[str, Any], secret: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    code = the_node(workflow, "n8n-nodes-base.code")["parameters"]["jsCode"]
    env = {"ZAPGATE_WEBHOOK_SECRET": secret, "ZAPGATE_URL": "http://zapgate.invalid"}
    return node_run({"action": "code", "code": code, "env": env, "items": items})


def test_the_workflow_is_well_formed_n8n(workflow: dict[str, Any]) -> None:
    assert workflow["name"]
    assert isinstance(workflow["settings"], dict)
    names = [node["name"] for node in workflow["nodes"]]
    assert len(set(names)) == len(names)
    assert len({node["id"] for node in workflow["nodes"]}) == len(names)
    for node in workflow["nodes"]:
        assert node["type"] in N8N_TYPES, node["type"]
        assert isinstance(node["typeVersion"], int | float)
        assert isinstance(node["parameters"], dict)
        assert len(node["position"]) == 2
    for source, outputs in workflow["connections"].items():
        assert source in names, source
        for branch in outputs["main"]:
            for link in branch:
                assert link["node"] in names, link
                assert link["type"] == "main"
    reached = {
        link["node"] for o in workflow["connections"].values() for b in o["main"] for link in b
    }
    assert reached == set(names) - {the_node(workflow, "n8n-nodes-base.webhook")["name"]}


def test_the_webhook_keeps_the_raw_body_and_answers_through_a_respond_node(
    workflow: dict[str, Any],
) -> None:
    hook = the_node(workflow, "n8n-nodes-base.webhook")["parameters"]
    assert hook["httpMethod"] == "POST"
    assert hook["options"]["rawBody"] is True  # the signature is over the exact bytes
    assert hook["responseMode"] == "responseNode"
    respond = the_node(workflow, "n8n-nodes-base.respondToWebhook")["parameters"]
    assert respond["options"]["responseCode"] == 204


def test_no_secret_is_in_the_workflow(workflow: dict[str, Any]) -> None:
    text = WORKFLOW.read_text(encoding="utf-8")
    assert "whsec_" not in text.replace("whsec_...", "").replace("/^whsec_/", "")
    assert "zg_" not in text
    assert "Bearer " not in text
    for node in nodes_of(workflow, "n8n-nodes-base.httpRequest"):
        assert node["parameters"]["authentication"] == "genericCredentialType"
        assert node["parameters"]["genericAuthType"] == "httpHeaderAuth"
        assert set(node["credentials"]) == {"httpHeaderAuth"}
        headers = node["parameters"].get("headerParameters", {}).get("parameters", [])
        assert "authorization" not in {header["name"].lower() for header in headers}


async def test_the_filter_names_event_types_of_the_webhooks(
    workflow: dict[str, Any], spec: Spec, api: httpx.AsyncClient, server: RunningServer
) -> None:
    conditions = the_node(workflow, "n8n-nodes-base.if")["parameters"]["conditions"]
    assert conditions["combinator"] == "and"
    on_type = [c for c in conditions["conditions"] if c["leftValue"] == "={{ $json.type }}"]
    assert on_type, "the IF node filters on the event type"
    assert {c["rightValue"] for c in on_type} <= event_types(spec)
    await wait_working(server)
    event = await received_event(api, "filtro")
    other = {**event, "type": "message.status"}
    assert all(passes(c, event) for c in conditions["conditions"])
    assert not all(passes(c, other) for c in conditions["conditions"])


def passes(condition: dict[str, Any], event: dict[str, Any]) -> bool:
    assert condition["operator"] == {"type": "string", "operation": "equals"}, condition
    values = {"left": condition["leftValue"]}
    answer = node_run({"action": "expressions", "values": values, "json": event, "env": {}})
    return bool(answer["values"]["left"] == condition["rightValue"])


async def test_every_http_request_is_an_operation_that_takes_its_body(
    workflow: dict[str, Any], spec: Spec, api: httpx.AsyncClient, server: RunningServer
) -> None:
    await wait_working(server)
    event = await received_event(api, "Oi, n8n")
    requests = nodes_of(workflow, "n8n-nodes-base.httpRequest")
    assert requests
    for node in requests:
        parameters = node["parameters"]
        url = parameters["url"]
        assert url.startswith("=" + ZAPGATE_URL), url
        template = EXPRESSION.sub("{}", url.removeprefix("=" + ZAPGATE_URL))
        operation = operation_of(spec, parameters["method"], template)
        declared = {
            p["name"].lower() for p in operation.get("parameters", []) if p["in"] == "header"
        }
        headers = {h["name"]: h["value"] for h in parameters["headerParameters"]["parameters"]}
        assert {name.lower() for name in headers} <= declared, (headers, declared)
        values = {"url": url, "body": parameters["jsonBody"], **headers}
        env = {"ZAPGATE_URL": server.url}
        resolved = node_run({"action": "expressions", "values": values, "json": event, "env": env})
        body = json.loads(resolved["values"].pop("body"))
        schema = operation["requestBody"]["content"]["application/json"]["schema"]
        jsonschema.Draft202012Validator(
            {**schema, "components": spec["components"]},
            format_checker=jsonschema.FormatChecker(),
        ).validate(body)
        target = resolved["values"].pop("url")
        answer = await api.request(
            parameters["method"], target, json=body, headers=resolved["values"]
        )
        assert answer.status_code == 202, answer.text
        assert answer.json()["chat_id"] == event["payload"]["chat_id"]
        again = await api.request(
            parameters["method"], target, json=body, headers=resolved["values"]
        )
        assert again.json()["id"] == answer.json()["id"]  # a retried delivery sends nothing twice


async def test_the_code_node_verifies_a_real_delivery(
    workflow: dict[str, Any], api: httpx.AsyncClient, server: RunningServer, receiver: Receiver
) -> None:
    await wait_working(server)
    created = await api.post(
        "/api/v1/webhooks", json={"url": receiver.url, "events": ["message.received"]}
    )
    assert created.status_code == 201, created.text
    secret = created.json()["secret"]
    event = await received_event(api, "assinado")
    await receiver.wait_until(lambda r: len(r.successes()) == 1)
    got = receiver.successes()[0]
    accepted = verify(workflow, secret, [delivery_item(got.headers, got.body)])
    assert accepted == {"ok": True, "items": [{"json": event}]}
    other = signing.new_secret()
    refused = verify(workflow, other, [delivery_item(got.headers, got.body)])
    assert refused["ok"] is False
    assert "signature" in refused["error"]


def test_the_code_node_checks_what_signing_headers_signs(workflow: dict[str, Any]) -> None:
    old, new = signing.new_secret(), signing.new_secret()
    body = json.dumps({"id": "evt_1", "type": "message.received", "payload": {}}).encode()
    now = int(time.time())
    rotating = signing.headers([new, old], "evt_1", now, body)
    for secret in (old, new):  # either secret of a rotation verifies
        assert verify(workflow, secret, [delivery_item(rotating, body)])["ok"] is True
    tampered = body.replace(b"message.received", b"message.received ")
    assert verify(workflow, new, [delivery_item(rotating, tampered)])["ok"] is False
    stale = signing.headers([new], "evt_1", now - 600, body)
    assert verify(workflow, new, [delivery_item(stale, body)])["ok"] is False
    unsigned = {k: v for k, v in rotating.items() if k != signing.SIGNATURE_HEADER}
    assert verify(workflow, new, [delivery_item(unsigned, body)])["ok"] is False
    assert verify(workflow, "not-a-secret", [delivery_item(rotating, body)])["ok"] is False
