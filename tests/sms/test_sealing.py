"""The SMS provider's auth token is sealed at rest, like every engine's write-only secret."""

from __future__ import annotations

import json

import httpx
import sqlalchemy as sa

from tests.conftest import RunningServer
from tests.sms.conftest import SESSION, create_session
from tests.support.fake_twilio import FakeTwilio
from zapgate.db.tables import sessions


async def test_the_auth_token_is_sealed_at_rest_and_still_works(
    server: RunningServer, api: httpx.AsyncClient, twilio: FakeTwilio
) -> None:
    await create_session(server, api, twilio)  # WORKING: the sealed token opened for Twilio
    statement = sa.select(sessions.c.config).where(sessions.c.name == SESSION)
    async with server.services.database.connect() as connection:
        stored = (await connection.execute(statement)).scalar_one()
    assert stored["auth_token"].startswith("sealed:v1:")
    assert twilio.auth_token not in json.dumps(stored)
