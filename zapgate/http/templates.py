"""Path templates (``/api/v1/sessions/{session}``) matched against concrete paths, for requests
the router did not see (the fast lanes): audit entries and metrics name the template."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

Route = tuple[str, dict[str, str]]
"""A template and the parameters a path gave it."""
UNMATCHED = "unmatched"
"""The template named for a request no route took (a 404): never the concrete path."""


class PathTemplates:
    """The app's path templates, matched against a path the router did not see."""

    def __init__(self, paths: Callable[[], Iterable[str]]) -> None:
        self._paths = paths
        self._compiled: list[tuple[re.Pattern[str], str]] | None = None

    def match(self, path: str) -> Route | None:
        if self._compiled is None:  # built at the first use: the schema is built by then
            templates = sorted(self._paths(), key=lambda template: template.count("{"))
            self._compiled = [(_pattern(template), template) for template in templates]
        for pattern, template in self._compiled:
            found = pattern.fullmatch(path)
            if found:
                return template, found.groupdict()
        return None


def _pattern(template: str) -> re.Pattern[str]:
    parts = re.split(r"\{(\w+)\}", template)
    regex = "".join(
        re.escape(part) if index % 2 == 0 else f"(?P<{part}>[^/]+)"
        for index, part in enumerate(parts)
    )
    return re.compile(regex)


def template_of(scope: Any, templates: PathTemplates) -> str:
    """The template the router matched for a served request, else the one its path fits (the
    fast lanes), else ``UNMATCHED``: never a concrete path (bounded label values)."""
    template = getattr(scope.get("route"), "path", None)
    if isinstance(template, str):
        return template
    found = templates.match(scope["path"])
    return found[0] if found is not None else UNMATCHED
