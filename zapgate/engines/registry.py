"""Engine names to factories and per-engine config schemas."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from zapgate.engines.base import Capability, Engine
from zapgate.errors import EngineUnavailable, InvalidInput, Unsupported
from zapgate.validation import located

EngineFactory = Callable[[], Engine]


@dataclass(frozen=True, slots=True)
class EngineSpec:
    """How to build one kind of engine and check a session's config for it."""

    factory: EngineFactory
    capabilities: frozenset[Capability]
    config_model: type[BaseModel] | None = None
    unavailable: Callable[[], str | None] = lambda: None
    """None when the engine can run on this machine, else what is missing."""
    forget_tenant: Callable[[str], None] = lambda _tenant: None
    """Delete what the engine keeps on this machine for a tenant (its sessions' logins)."""
    narrowed: Callable[[dict[str, Any]], frozenset[Capability]] | None = None
    """The capabilities of a session with this config, when its config can narrow them."""
    secret_keys: frozenset[str] = frozenset()
    """Config keys that are write-only: never shown, kept when an update leaves them out."""
    secrets_go_to: frozenset[str] = frozenset()
    """Config keys that say where the secrets are sent: an update changing one must give the
    secrets again (else a caller could send the kept ones to a host of its own)."""
    paces_itself: bool = False
    """The engine keeps its own rate (zapgate's anti-ban pacing is not applied on top)."""
    send_window: int = 1
    """Sends a session may have in the engine's hands at once (to different recipients)."""
    channel: str = "whatsapp"
    """What its sessions talk over (``zapgate.channels.Channel``): the addresses they reach."""

    def capabilities_for(self, config: dict[str, Any]) -> frozenset[Capability]:
        """What a session of this engine with ``config`` can do."""
        if self.narrowed is None:
            return self.capabilities
        try:
            return self.narrowed(config)
        except ValueError:  # a config stored before it was checked: the engine's own
            return self.capabilities


class EngineRegistry:
    """Builds an engine for a session by name."""

    def __init__(self, specs: dict[str, EngineSpec]) -> None:
        self._specs = dict(specs)

    def register(self, name: str, spec: EngineSpec) -> None:
        """Add (or replace) an engine."""
        self._specs[name] = spec

    @property
    def names(self) -> list[str]:
        """Known engine names."""
        return sorted(self._specs)

    def spec(self, name: str) -> EngineSpec:
        """The spec of ``name``; Unsupported for an unknown engine."""
        spec = self._specs.get(name)
        if spec is None:
            raise Unsupported(f"unknown engine {name!r}; known: {', '.join(self.names)}")
        return spec

    def require_available(self, name: str) -> None:
        """EngineUnavailable (naming what is missing) when ``name`` cannot run here."""
        reason = self.spec(name).unavailable()
        if reason is not None:
            raise EngineUnavailable(f"engine {name!r} cannot run on this machine: {reason}")

    def forget_tenant(self, tenant: str) -> None:
        """Delete what every engine keeps on this machine for ``tenant``."""
        for spec in self._specs.values():
            spec.forget_tenant(tenant)

    def create(self, name: str) -> Engine:
        """A new engine instance."""
        return self.spec(name).factory()

    def check_config(self, name: str, config: dict[str, Any]) -> None:
        """Raise InvalidInput when ``config`` is not valid for engine ``name``."""
        model = self.spec(name).config_model
        if model is None:
            if config:
                raise InvalidInput(f"engine {name!r} takes no config")
            return
        try:
            model.model_validate(config)
        except ValidationError as error:
            raise located(error, "body", "config") from None
