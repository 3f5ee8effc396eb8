"""The layering holds: no import cycle between files, no package using another's tables."""
from __future__ import annotations

from pathlib import Path

from tests import architecture as arch


def _tree(root: Path, files: dict[str, str]) -> dict[str, Path]:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return arch.modules(root, ("alpha", "beta"))


def test_no_import_cycles() -> None:
    found = arch.cycles()
    assert found == [], "import cycles: " + "; ".join(" <-> ".join(c) for c in found)


def test_no_package_uses_another_packages_tables() -> None:
    found = arch.reaches()
    assert found == [], "reaches into other packages' tables:\n" + "\n".join(map(str, found))


def test_function_level_imports_say_why() -> None:
    found = arch.unexplained_imports()
    assert found == [], "imports inside functions with no reason given:\n" + "\n".join(found)


def test_an_unexplained_function_level_import_is_found(tmp_path: Path) -> None:
    known = _tree(tmp_path, {
        "alpha/__init__.py": "",
        "alpha/one.py": ("def f():\n    import json\n"
                         "def g():\n    # optional: girth may be missing\n    import girth\n"
                         "def h():\n    import csv  # start-up: 5 ms\n"),
    })
    assert arch.unexplained_imports(known) == ["alpha.one:2: json"]


def test_cycle_through_a_function_level_import_is_found(tmp_path: Path) -> None:
    known = _tree(tmp_path, {
        "alpha/__init__.py": "",
        "alpha/one.py": "from alpha.two import f\n",
        "alpha/two.py": "def f():\n    from . import three\n",
        "alpha/three.py": "def g():\n    import alpha.one\n",
        "alpha/four.py": "from alpha import one\n",
    })
    assert arch.cycles(arch.import_graph(known)) == [["alpha.one", "alpha.three", "alpha.two"]]


def test_models_import_table_and_sql_reaches_are_found(tmp_path: Path) -> None:
    known = _tree(tmp_path, {
        "alpha/__init__.py": "",
        "alpha/models.py": "class T:\n    __tablename__ = 'alpha_row'\n",
        "alpha/ok.py": "from alpha.models import T\n",
        "beta/__init__.py": "",
        "beta/models.py": ("import sqlalchemy as sa\nclass U:\n    __tablename__ = 'beta_row'\n"
                           "    a = sa.ForeignKey('alpha_row.id')\n"
                           "    d = sa.ForeignKey('district.code')\n"),
        "beta/uses.py": ("import sqlalchemy as sa\n"
                         "def f():\n    from alpha.models import T\n"
                         "t = sa.table('alpha_row')\n"
                         "q = sa.text('SELECT id FROM alpha_row JOIN beta_row ON 1=1')\n"
                         "fine = sa.text('SELECT 1 FROM beta_row')\n"),
    })
    found = [(r.module, r.line, r.owner) for r in arch.reaches(known)]
    assert found == [("beta.models", 4, "alpha"), ("beta.uses", 3, "alpha"),
                     ("beta.uses", 4, "alpha"), ("beta.uses", 5, "alpha")]
