"""The arrows of DESIGN.md, read from the source: actors and schemas stand apart from the server,
routes know HTTP and not SQL, and no route reaches into `app.state`."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ROUTE_MAY_USE_FROM_DB = {"server.db.unit": {"UnitOfWork"}}


@dataclass(frozen=True, slots=True)
class Import:
    module: str
    """The importing module."""
    target: str
    """What it imports: a module, or `module.name` for each name of a `from` import."""
    line: int

    def reaches(self, package: str) -> bool:
        return self.target == package or self.target.startswith(f"{package}.")

    def __str__(self) -> str:
        return f"{self.module}:{self.line} imports {self.target}"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _sources(package: str) -> Iterator[tuple[str, Path, ast.Module]]:
    for path in sorted((ROOT / package.replace(".", "/")).rglob("*.py")):
        yield _module_name(path), path, ast.parse(path.read_text(encoding="utf-8"), str(path))


def _imports(package: str) -> Iterator[Import]:
    for module, path, tree in _sources(package):
        yield from _imports_of(module, path.name == "__init__.py", tree)


def _imports_of(module: str, is_package: bool, tree: ast.Module) -> Iterator[Import]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(module, alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(module, is_package, node.module, node.level)
            yield Import(module, base, node.lineno)
            for alias in node.names:
                yield Import(module, f"{base}.{alias.name}", node.lineno)


def _absolute(module: str, is_package: bool, name: str | None, level: int) -> str:
    if level == 0:
        return name or ""
    parts = module.split(".")
    anchor = parts if is_package else parts[:-1]
    anchor = anchor[: len(anchor) - (level - 1)]
    return ".".join([*anchor, name] if name else anchor)


def _allowed_in_routes(found: Import) -> bool:
    for module, names in ROUTE_MAY_USE_FROM_DB.items():
        if found.target == module:
            return True
        if found.target.startswith(f"{module}."):
            return found.target.removeprefix(f"{module}.") in names
    return False


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [("actors", ["server"]), ("schemas", ["server", "actors"])],
)
def test_a_package_imports_nothing_from_those_it_stands_apart_from(
    package: str, forbidden: list[str]
) -> None:
    found = [str(i) for i in _imports(package) if any(i.reaches(f) for f in forbidden)]
    assert found == []


def test_routes_import_nothing_of_the_db_layer_but_the_unit_of_work_type() -> None:
    found = [
        str(i)
        for i in _imports("server.routes")
        if i.reaches("server.db") and not _allowed_in_routes(i)
    ]
    assert found == []


def test_routes_never_touch_app_state() -> None:
    found = [
        f"{module}:{node.lineno}"
        for module, _, tree in _sources("server.routes")
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr == "state" and _is_app(node.value)
    ]
    assert found == []


def _is_app(node: ast.expr) -> bool:
    if isinstance(node, ast.Attribute):
        return node.attr == "app"
    return isinstance(node, ast.Name) and node.id == "app"


def test_the_checks_see_what_they_forbid() -> None:
    tree = ast.parse(
        "import server.db.pool\n"
        "from server.db.queries import users\n"
        "from server.db.unit import Database, UnitOfWork\n"
        "from . import sibling\n"
        "state = request.app.state\n"
    )
    imports = list(_imports_of("server.routes.x", False, tree))
    flagged = [i.target for i in imports if i.reaches("server.db") and not _allowed_in_routes(i)]
    assert flagged == [
        "server.db.pool",
        "server.db.queries",
        "server.db.queries.users",
        "server.db.unit.Database",
    ]
    assert "server.routes.sibling" in [i.target for i in imports]
    attributes = [n for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr == "state"]
    assert [_is_app(n.value) for n in attributes] == [True]
