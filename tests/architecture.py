"""The project's import graph: file-level import cycles and reaches into other packages' tables.

Every import counts, at module level or inside a function, since both tie the two
files together; an import inside a function must say why in a comment (an optional
dependency or a measured start-up cost). Run ``python -m tests.architecture`` to print
what the tests refuse.

* a **cycle** is a set of modules that import each other, directly or in a circle;
* a **reach** is a module of one package that imports another package's ORM models (any
  module declaring ``__tablename__``) or names another package's table in
  ``sa.table(...)``, ``ForeignKey(...)`` or SQL text. Packages use each other only
  through the service functions their READMEs document. The one exception is a foreign
  key onto a primary key that its owner's README lists as referenceable
  (:data:`REFERENCEABLE`): the database keeps those references whole, and the owner
  promises the key never changes meaning.
"""
from __future__ import annotations

import ast
import re
import sys
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: the packages of the product (``tests``, ``bench`` and ``loadtest`` use them freely)
PACKAGES = ("learningcity", "scoring", "tabular", "itembank", "assessment", "surveys",
            "monitoring")
#: schema history is not code: Alembic revisions name every package's tables
EXCLUDED = ("learningcity/migrations",)
#: table -> why others may hold a foreign key to its primary key (see the owner's README)
REFERENCEABLE = {
    "district": "learningcity: district codes are the city's, campaigns and staff belong to one",
    "instrument": "itembank: a test session is of one instrument",
    "calibration": "itembank: a session is scored with one immutable calibration",
    "item_version": "itembank: an answer is to one immutable item version",
    "test_session": "assessment: an invitation leads to at most one test session",
}
_SQL_TABLE = re.compile(r"\b(?:from|join|into|update|table)\s+\"?([a-z_][a-z0-9_]*)", re.I)


@dataclass(frozen=True)
class Reach:
    """A module using another package's tables: where, whose, how."""

    module: str
    line: int
    owner: str
    what: str

    def __str__(self) -> str:
        return f"{self.module}:{self.line}: {self.what} (belongs to {self.owner})"


def modules(root: Path = ROOT, packages: tuple[str, ...] = PACKAGES) -> dict[str, Path]:
    """Module name -> file, for every module of the product packages."""
    found: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            rel = path.relative_to(root)
            if any(str(rel).startswith(x) for x in EXCLUDED):
                continue
            parts = list(rel.with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def _resolve(module: str, path: Path, target: str | None, level: int) -> str:
    if level == 0:
        return target or ""
    base = module.split(".")
    if path.name != "__init__.py":
        base = base[:-1]
    if level > 1:
        base = base[:len(base) - (level - 1)]
    return ".".join(base + ([target] if target else []))


def imports(module: str, path: Path, known: dict[str, Path]) -> Iterator[tuple[str, int]]:
    """(imported module, line) for every import in the file, function-level ones included."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(module, path, node.module, node.level)
            names = [((f"{base}.{a.name}" if f"{base}.{a.name}" in known else base),
                      node.lineno) for a in node.names]
        else:
            continue
        for name, line in names:
            while name and name not in known and "." in name:
                name = name.rsplit(".", 1)[0]
            if name in known and name != module:
                yield name, line


def import_graph(known: dict[str, Path] | None = None) -> dict[str, set[str]]:
    """Module -> the product modules it imports."""
    known = modules() if known is None else known
    graph: dict[str, set[str]] = defaultdict(set)
    for module, path in known.items():
        graph[module]
        for target, _line in imports(module, path, known):
            graph[module].add(target)
    return dict(graph)


def cycles(graph: dict[str, set[str]] | None = None) -> list[list[str]]:
    """The strongly connected sets of more than one module (Tarjan), each sorted."""
    graph = import_graph() if graph is None else graph
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            members = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                members.append(w)
                if w == v:
                    break
            if len(members) > 1:
                found.append(sorted(members))

    sys.setrecursionlimit(max(10_000, sys.getrecursionlimit()))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def package_of(module: str) -> str:
    return module.split(".", 1)[0]


def table_owners(known: dict[str, Path]) -> dict[str, str]:
    """Table name -> the package whose models declare it (``__tablename__``)."""
    owners: dict[str, str] = {}
    for module, path in known.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Assign) and any(
                    isinstance(t, ast.Name) and t.id == "__tablename__" for t in node.targets):
                if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
                    owners[node.value.value] = package_of(module)
    return owners


def _call_name(node: ast.Call) -> str:
    func = node.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def orm_modules(known: dict[str, Path]) -> set[str]:
    """The modules that declare tables (``__tablename__``)."""
    return {m for m, path in known.items()
            if re.search(r"^\s+__tablename__\s*=", path.read_text(encoding="utf-8"), re.M)}


def reaches(known: dict[str, Path] | None = None) -> list[Reach]:
    """Every use of another package's models or tables, outside its service functions."""
    known = modules() if known is None else known
    owners = table_owners(known)
    orm = orm_modules(known)
    found: set[Reach] = set()
    for module, path in known.items():
        mine = package_of(module)
        for target, line in imports(module, path, known):
            if target in orm and package_of(target) != mine:
                found.add(Reach(module, line, package_of(target), f"imports {target}"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            first = node.args[0]
            if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
                continue
            name, text = _call_name(node), first.value
            if name in ("table", "Table"):
                named = [text]
            elif name == "ForeignKey":
                named = [t for t in [text.split(".", 1)[0]] if t not in REFERENCEABLE]
            elif name == "text":
                named = _SQL_TABLE.findall(text)
            else:
                continue
            for table in named:
                owner = owners.get(table)
                if owner is not None and owner != mine:
                    found.add(Reach(module, node.lineno, owner,
                                    f"{name}(...) names the table {table!r}"))
    return sorted(found, key=lambda r: (r.module, r.line))


#: a comment before a function-level import saying why it is not at the top
_WHY = re.compile(r"#.*(start-up|startup|optional|importtime|import time)", re.I)


def unexplained_imports(known: dict[str, Path] | None = None) -> list[str]:
    """Function-level imports with no comment saying why (an optional dependency or a
    measured start-up cost) between the ``def`` and the import: ``module:line: name``."""
    known = modules() if known is None else known
    found = []
    for module, path in known.items():
        text = path.read_text(encoding="utf-8")
        lines = text.split("\n")
        for node in ast.walk(ast.parse(text)):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for sub in ast.walk(node):
                if isinstance(sub, (ast.Import, ast.ImportFrom)):
                    before = "\n".join(lines[node.lineno - 1:sub.end_lineno])
                    if not _WHY.search(before):
                        name = (sub.module or "." * sub.level) if isinstance(
                            sub, ast.ImportFrom) else sub.names[0].name
                        found.append(f"{module}:{sub.lineno}: {name}")
    return sorted(found)


def main() -> int:
    found_cycles, found_reaches = cycles(), reaches()
    unexplained = unexplained_imports()
    for members in found_cycles:
        print("cycle: " + " <-> ".join(members))
    for reach in found_reaches:
        print("reach: " + str(reach))
    for where in unexplained:
        print("import inside a function without a reason: " + where)
    print(f"{len(found_cycles)} cycles, {len(found_reaches)} reaches, "
          f"{len(unexplained)} unexplained function-level imports")
    return 1 if found_cycles or found_reaches or unexplained else 0


if __name__ == "__main__":
    raise SystemExit(main())
