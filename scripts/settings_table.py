"""Write the README's configuration table from the settings' declarations.

Every ``NOTIFY_*`` setting is declared once (``notify_core/settings_decl.py``); this
rewrites the table between the markers in README.md from them. ``--check`` only compares
and fails when the README is stale (``tests/unit/test_readme_settings.py`` does the same).

    .venv/bin/python scripts/settings_table.py [--check]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from notify_app.settings import GROUPS
from notify_core.settings_decl import markdown_table, with_table

README = Path(__file__).resolve().parents[1] / "README.md"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if README.md is stale")
    args = parser.parse_args()
    text = README.read_text(encoding="utf-8")
    fresh = with_table(text, markdown_table(GROUPS))
    if fresh == text:
        return 0
    if args.check:
        print("README.md: the settings table is stale; run scripts/settings_table.py")
        return 1
    README.write_text(fresh, encoding="utf-8")
    print("README.md: settings table written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
