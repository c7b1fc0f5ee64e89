"""The configured admin key (ZAPGATE_API_KEY) can be changed and changed back."""

from __future__ import annotations

import pytest

from zapgate.auth.service import Authenticator
from zapgate.errors import Unauthorized
from zapgate.services import Services

K1 = "zg_first0000001_" + "a" * 32
K2 = "zg_second000001_" + "b" * 32


async def test_switching_the_key_back_and_forth_keeps_the_admin_in(services: Services) -> None:
    fresh = Authenticator(services.database, services.committer, True, cache_seconds=0)
    await services.auth.bootstrap("default", K1)
    await services.auth.bootstrap("default", K2)
    with pytest.raises(Unauthorized):
        await fresh.authenticate(K1)
    assert (await fresh.authenticate(K2)).tenant == "default"
    await services.auth.bootstrap("default", K1)
    assert (await fresh.authenticate(K1)).tenant == "default"
    with pytest.raises(Unauthorized):
        await fresh.authenticate(K2)
