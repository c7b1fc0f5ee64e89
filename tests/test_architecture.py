"""The layers, checked on the source: SQL only in repositories, every repository function scoped by
tenant (or named ``all_tenants_...``), and a domain that never imports a web framework.

Each rule is a small function; the ``catches`` tests feed it a violating snippet, so a rule that
stops seeing anything fails too.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import sys
import typing
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

import zapgate

ROOT = Path(zapgate.__file__).parent
SQL_RULES_SKIP: tuple[str, ...] = ()
WEB_FRAMEWORKS = ("fastapi", "starlette", "socketio", "engineio")
EXECUTING = {"execute", "exec_driver_sql", "scalar", "scalars", "stream_scalars"}


def sources(skip: tuple[str, ...] = ()) -> Iterator[tuple[str, str]]:
    """(path relative to the package, source) of every module of zapgate not under ``skip``."""
    for path in sorted(ROOT.rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        if not relative.startswith(skip):
            yield relative, path.read_text(encoding="utf-8")


def module_name(relative: str) -> str:
    parts = ["zapgate", *relative.removesuffix(".py").split("/")]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(source: str) -> set[str]:
    """Every module, and ``module.name``, that the import statements of ``source`` name."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def test_imports_are_absolute_so_the_rules_see_them() -> None:
    relative = [path for path, source in sources() if any(i[0] == "." for i in imports(source))]
    assert relative == []


def within(name: str, roots: tuple[str, ...]) -> str | None:
    """The root of ``roots`` that module ``name`` is or lies under."""
    return next((root for root in roots if name == root or name.startswith(f"{root}.")), None)


# SQL lives in zapgate/db/ and */repository.py --------------------------------------------------


def is_repository(relative: str) -> bool:
    return relative.rsplit("/", 1)[-1] == "repository.py"


def may_hold_sql(relative: str) -> bool:
    return relative.startswith("db/") or is_repository(relative)


def sql_outside_repositories(relative: str, source: str) -> list[str]:
    """What in a module outside db/ and repositories speaks SQL: an import of sqlalchemy (but its
    async engine and connection types) or of the tables, or a statement executed."""
    if may_hold_sql(relative):
        return []
    found = sorted(
        {
            root
            for name in imports(source)
            if not within(name, ("sqlalchemy.ext.asyncio",))
            and (root := within(name, ("sqlalchemy", "zapgate.db.tables")))
        }
    )
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in EXECUTING
        ):
            found.append(f"line {node.lineno}: .{node.func.attr}(...)")
    return found


def test_sql_lives_only_in_db_and_repositories() -> None:
    found = {
        relative: problems
        for relative, source in sources(SQL_RULES_SKIP)
        if (problems := sql_outside_repositories(relative, source))
    }
    assert found == {}, "move these into the owning package's repository.py"


@pytest.mark.parametrize(
    ("relative", "snippet", "expected"),
    [
        ("x/service.py", "import sqlalchemy as sa", ["sqlalchemy"]),
        ("x/service.py", "from sqlalchemy import text", ["sqlalchemy"]),
        ("x/service.py", "from zapgate.db.tables import messages", ["zapgate.db.tables"]),
        ("x/service.py", "from zapgate.db import tables", ["zapgate.db.tables"]),
        (
            "x/service.py",
            "async def f(unit):\n    await unit.connection.exec_driver_sql('DELETE FROM t')",
            ["line 2: .exec_driver_sql(...)"],
        ),
        ("x/service.py", "from sqlalchemy.ext.asyncio import AsyncEngine", []),
        ("x/repository.py", "import sqlalchemy as sa", []),
        ("db/committer.py", "from zapgate.db.tables import sessions", []),
    ],
)
def test_the_sql_rule_catches(relative: str, snippet: str, expected: list[str]) -> None:
    assert sql_outside_repositories(relative, snippet) == expected


# every repository function is scoped by tenant ------------------------------------------------


def carries_tenant(annotation: object) -> bool:
    """A type whose values name their tenant (HistoryQuery, Message, Match): a dataclass field."""
    fields = getattr(annotation, "__dataclass_fields__", {})
    return inspect.isclass(annotation) and "tenant" in fields


def unscoped_functions(module: ModuleType) -> list[str]:
    """Public functions of a repository module that take no tenant (nor a value naming one) and
    do not say ``all_tenants_`` in their name."""
    found = []
    for name, function in inspect.getmembers(module, inspect.isfunction):
        if function.__module__ != module.__name__ or name.startswith(("_", "all_tenants_")):
            continue
        hints = typing.get_type_hints(function)
        parameters = inspect.signature(function).parameters
        if "tenant" in parameters or any(carries_tenant(hints.get(p)) for p in parameters):
            continue
        found.append(name)
    return found


def repository_modules() -> list[str]:
    return [module_name(path) for path, _ in sources(SQL_RULES_SKIP) if is_repository(path)]


def test_there_are_repositories_to_check() -> None:
    assert {"zapgate.tenants.repository", "zapgate.sessions.repository"} <= set(
        repository_modules()
    )


@pytest.mark.parametrize("name", repository_modules())
def test_repository_functions_take_a_tenant_or_say_all_tenants(name: str) -> None:
    assert unscoped_functions(importlib.import_module(name)) == []


def snippet_module(source: str, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """``source`` as an imported module (dataclasses look their module up in sys.modules)."""
    module = ModuleType("snippet_repository")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    exec(compile(source, "snippet_repository.py", "exec"), module.__dict__)
    return module


SCOPED_SNIPPET = """
from __future__ import annotations
from dataclasses import dataclass

@dataclass
class Query:
    tenant: str

async def by_tenant(engine, tenant: str): ...
async def by_query(engine, query: Query): ...
async def all_tenants_purge(engine): ...
def _helper(engine): ...
"""


@pytest.mark.parametrize(
    ("snippet", "expected"),
    [
        ("async def pending(engine, webhook_id: str): ...", ["pending"]),
        ("async def count(connection, tenant_id: str): ...", ["count"]),
        ("async def purge_all(engine): ...", ["purge_all"]),
        (
            "from __future__ import annotations\n"
            "from dataclasses import dataclass\n"
            "async def append(connection, drafts: list[Draft]): ...\n"
            "@dataclass\nclass Draft:\n    tenant: str",
            ["append"],
        ),
        (SCOPED_SNIPPET, []),
    ],
)
def test_the_tenant_rule_catches(
    snippet: str, expected: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert unscoped_functions(snippet_module(snippet, monkeypatch)) == expected


# the domain never imports a web framework -----------------------------------------------------


def is_domain(relative: str) -> bool:
    """Use cases, models, repositories and engines: they must run without any web framework."""
    parts = relative.split("/")
    return relative.startswith("engines/") or (
        len(parts) == 2 and parts[1] in ("service.py", "model.py", "repository.py")
    )


def framework_reached(start: str, graph: dict[str, set[str]]) -> list[str]:
    """The import chains from module ``start`` (through zapgate modules) to a web framework."""
    chains: set[str] = set()
    seen = {start}
    todo = [[start]]
    while todo:
        chain = todo.pop()
        for name in graph.get(chain[-1], set()):
            if framework := within(name, WEB_FRAMEWORKS):
                chains.add(" -> ".join([*chain, framework]))
            elif name in graph and name not in seen:
                seen.add(name)
                todo.append([*chain, name])
    return sorted(chains)


def import_graph(modules: dict[str, str]) -> dict[str, set[str]]:
    """Module name -> the modules it imports (``from package import module`` names both)."""
    return {name: imports(source) for name, source in modules.items()}


def test_the_domain_never_imports_a_web_framework() -> None:
    everything = dict(sources())
    graph = import_graph({module_name(relative): source for relative, source in everything.items()})
    found = [
        chain
        for relative in everything
        if is_domain(relative)
        for chain in framework_reached(module_name(relative), graph)
    ]
    assert found == [], "pass what the domain needs in; keep the framework at the edge"


@pytest.mark.parametrize(
    ("modules", "expected"),
    [
        ({"zapgate.x.service": "import fastapi"}, ["zapgate.x.service -> fastapi"]),
        (
            {"zapgate.x.service": "from starlette.requests import Request"},
            ["zapgate.x.service -> starlette"],
        ),
        (
            {
                "zapgate.x.service": "from zapgate.http import errors",
                "zapgate.http.errors": "import socketio",
            },
            ["zapgate.x.service -> zapgate.http.errors -> socketio"],
        ),
        ({"zapgate.x.service": "import pydantic\nfrom zapgate.errors import AppError"}, []),
    ],
)
def test_the_framework_rule_catches(modules: dict[str, str], expected: list[str]) -> None:
    assert framework_reached("zapgate.x.service", import_graph(modules)) == expected


def test_domain_modules_are_recognised() -> None:
    assert is_domain("messages/service.py")
    assert is_domain("engines/wppconnect/engine.py")
    assert not is_domain("messages/api.py")
    assert not is_domain("http/health.py")
