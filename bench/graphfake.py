"""A lean stand-in for Meta's Graph API, for the Cloud API workload (``python -m bench.graphfake``).

It answers what the engine calls while sending text (the phone number, message sends) and
records when each send arrived (``time.monotonic``, the machine's clock shared by processes);
``GET /__dump`` returns those times. No status callbacks: the workload measures the send path.
The strict fake the tests use (``tests/support/fake_graph.py``) checks every request's shape;
this one only checks the token, so it costs the load core as little as possible.
"""

import argparse
import itertools
import json
import secrets
import time

import uvloop
from aiohttp import web

TOKEN = "EAAG-bench-token"
PHONE_NUMBER_ID = "106540352242922"
VERSION = "v24.0"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    arrivals: list[float] = []
    ids = itertools.count()
    prefix = "wamid.HBgM" + secrets.token_urlsafe(12)
    phone = json.dumps(
        {
            "verified_name": "Bench",
            "display_phone_number": "+55 11 95555-0100",
            "id": PHONE_NUMBER_ID,
            "quality_rating": "GREEN",
            "throughput": {"level": "HIGH"},
        }
    ).encode()

    def authorised(request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {TOKEN}"

    async def get_phone(request: web.Request) -> web.Response:
        if not authorised(request):
            return web.json_response({"error": {"code": 190, "message": "bad token"}}, status=401)
        return web.Response(body=phone, content_type="application/json")

    async def send(request: web.Request) -> web.Response:
        arrivals.append(time.monotonic())
        if not authorised(request):
            return web.json_response({"error": {"code": 190, "message": "bad token"}}, status=401)
        payload = await request.json()
        wamid = f"{prefix}{next(ids):010d}"
        answer = {
            "messaging_product": "whatsapp",
            "contacts": [{"input": payload["to"], "wa_id": payload["to"]}],
            "messages": [{"id": wamid}],
        }
        return web.json_response(answer)

    async def ready(_request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def dump(_request: web.Request) -> web.Response:
        return web.json_response({"arrivals": arrivals})

    app = web.Application()
    app.router.add_get("/__ready", ready)
    app.router.add_get("/__dump", dump)
    app.router.add_get(f"/{VERSION}/{PHONE_NUMBER_ID}", get_phone)
    app.router.add_post(f"/{VERSION}/{PHONE_NUMBER_ID}/messages", send)
    uvloop.install()
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
