"""Engine names to factories."""

from __future__ import annotations

from collections.abc import Callable

from zapgate.engines.base import Engine
from zapgate.errors import Unsupported

EngineFactory = Callable[[], Engine]


class EngineRegistry:
    """Builds an engine for a session by name."""

    def __init__(self, factories: dict[str, EngineFactory]) -> None:
        self._factories = dict(factories)

    @property
    def names(self) -> list[str]:
        """Known engine names."""
        return sorted(self._factories)

    def create(self, name: str) -> Engine:
        """A new engine instance; Unsupported for an unknown name."""
        factory = self._factories.get(name)
        if factory is None:
            raise Unsupported(f"unknown engine {name!r}; known: {', '.join(self.names)}")
        return factory()
