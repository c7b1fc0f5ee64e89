"""The webhooks package keeps its SQL in repository.py, and every query there is tenant-scoped."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "zapgate" / "webhooks"
REPOSITORY = PACKAGE / "repository.py"
OTHERS = sorted(path for path in PACKAGE.glob("*.py") if path != REPOSITORY)
SQL_CALLS = {"execute", "scalar", "scalars", "insert", "stream"}


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), str(path))


def _sql_sites(tree: ast.Module) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module in {"sqlalchemy", "zapgate.db.tables"}:
            found.append(f"line {node.lineno}: from {node.module} import ...")
        elif isinstance(node, ast.Import):
            found += [
                f"line {node.lineno}: import sqlalchemy"
                for a in node.names
                if a.name == "sqlalchemy"
            ]
        elif _is_sql_call(node):
            found.append(f"line {getattr(node, 'lineno', '?')}: {ast.unparse(node)}")
    return found


def _is_sql_call(node: ast.AST) -> bool:
    """``unit.insert(...)``, ``connection.execute(...)``, ``unit.connection.scalar(...)``..."""
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
        return False
    target = ast.unparse(node.func.value)
    return node.func.attr in SQL_CALLS and target.endswith(("unit", "connection"))


@pytest.mark.parametrize("path", OTHERS, ids=lambda path: path.name)
def test_no_sql_outside_the_repository(path: Path) -> None:
    assert _sql_sites(_tree(path)) == []


def test_the_rule_sees_sql() -> None:
    sample = "import sqlalchemy as sa\nasync def job(unit):\n    unit.insert(t, {})\n"
    assert len(_sql_sites(ast.parse(sample))) == 2


def test_every_repository_function_is_scoped_by_tenant() -> None:
    functions = [
        node
        for node in _tree(REPOSITORY).body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name[0] != "_"
    ]
    assert functions
    unscoped = [
        f.name
        for f in functions
        if not f.name.startswith("all_tenants_")
        and "tenant" not in [a.arg for a in f.args.args + f.args.kwonlyargs]
    ]
    assert unscoped == [], "take a tenant, or say all_tenants_ in the name"
