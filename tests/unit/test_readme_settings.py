"""The README's configuration table is generated from the settings' declarations
(``scripts/settings_table.py``), and lists exactly the settings the code reads."""

from __future__ import annotations

import re
from pathlib import Path

from notify_app.settings import GROUPS, KNOWN, load_settings
from notify_core.settings_decl import markdown_table, with_table

README = Path(__file__).resolve().parents[2] / "README.md"
_NAME_RE = re.compile(r"`(NOTIFY_[A-Z0-9_]+)`")


def _configuration_section() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("\n## Configuration\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def table_settings() -> set[str]:
    """Every name in the first column of the tables of the README's Configuration section."""
    names: set[str] = set()
    for line in _configuration_section().splitlines():
        cells = line.split("|")
        if line.startswith("|") and len(cells) > 2:
            names.update(_NAME_RE.findall(cells[1]))
    return names


def test_the_readme_table_is_the_one_generated_from_the_declarations() -> None:
    text = README.read_text(encoding="utf-8")
    assert text == with_table(text, markdown_table(GROUPS)), (
        "the README's settings table is stale: run .venv/bin/python scripts/settings_table.py"
    )


def test_every_setting_is_documented_once() -> None:
    names = [s.name for group in GROUPS for s in group.settings]
    assert len(names) == len(set(names)), "a setting is declared twice"
    undocumented = [s.name for group in GROUPS for s in group.settings if not s.doc.strip()]
    assert not undocumented, f"settings without a doc: {undocumented}"


def test_every_setting_the_code_reads_is_in_the_readme_table() -> None:
    load_settings({}, env_file=None)  # reads every declared name, and only declared ones
    missing = sorted(KNOWN - table_settings())
    assert not missing, f"add to the README's configuration table: {missing}"


def test_every_readme_table_row_is_a_setting_the_code_reads() -> None:
    unknown = sorted(table_settings() - KNOWN)
    assert not unknown, f"the README's configuration table names unknown settings: {unknown}"


def test_the_table_is_found() -> None:
    assert {"NOTIFY_DATABASE_URL", "NOTIFY_WEBHOOK_ALLOW_HTTP"} <= table_settings()
