"""Each service's public module (`<service>_svc/api.py`): the names it declares for mypy (its
TYPE_CHECKING imports), in `__all__` and in its `lazy_exports` table agree, each resolves
to the object of its home module, and a pure core that names one function of another
service does not import the rest of that service."""

from __future__ import annotations

import ast
import subprocess
import sys
from importlib import import_module
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICES = sorted(p.name for p in ROOT.glob("*_svc") if (p / "api.py").exists())


def _declared(service: str) -> tuple[dict[str, str], dict[str, str]]:
    """name -> home from the TYPE_CHECKING imports, and from the lazy_exports table."""
    tree = ast.parse((ROOT / service / "api.py").read_text())
    typed: dict[str, str] = {}
    lazy: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for stmt in node.body:
                assert isinstance(stmt, ast.ImportFrom) and stmt.module
                typed.update((alias.name, stmt.module) for alias in stmt.names)
        if isinstance(node, ast.Call) and ast.unparse(node.func) == "lazy_exports":
            table = ast.literal_eval(node.args[1])
            lazy.update((name, home) for home, names in table.items() for name in names)
    return typed, lazy


def test_every_service_has_a_public_module() -> None:
    every = sorted(p.name for p in ROOT.glob("*_svc") if (p / "__init__.py").exists())
    assert every == SERVICES


@pytest.mark.parametrize("service", SERVICES)
def test_declarations_agree_and_resolve(service: str) -> None:
    api = import_module(f"{service}.api")
    typed, lazy = _declared(service)
    assert typed == lazy
    assert sorted(api.__all__) == sorted(typed)
    for name, home in typed.items():
        assert home.split(".")[0] == service
        assert getattr(api, name) is getattr(import_module(home), name)


def test_an_unknown_name_is_an_attribute_error() -> None:
    api = import_module("delivery_svc.api")
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = api.no_such_name


def test_a_pure_core_imports_only_what_it_names() -> None:
    """`digest_svc/schedule.py` takes `local_instant` from `router_svc.api`: that loads
    `router_svc/quiet_hours.py`, not the router's stores or SQLAlchemy."""
    probe = (
        "import sys, digest_svc.schedule; "
        "print(sorted(m for m in sys.modules if m == 'sqlalchemy' or m.startswith('router_svc.')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "['router_svc.api', 'router_svc.quiet_hours']"
