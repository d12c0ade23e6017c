"""Regenerate gen/ from proto/: `python scripts/gen_proto.py` (or `--check`).

gen/ is committed and never edited by hand. `--check` regenerates into a temporary
folder and fails when it differs from gen/, so CI catches a stale gen/.
"""

from __future__ import annotations

import filecmp
import shutil
import sys
import tempfile
from importlib import resources
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO = ROOT / "proto"
GEN = ROOT / "gen"


def generate(out: Path) -> None:
    files = sorted(str(p.relative_to(PROTO)) for p in PROTO.rglob("*.proto"))
    include = str(resources.files("grpc_tools") / "_proto")
    args = [
        "protoc",
        f"-I{PROTO}",
        f"-I{include}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        *files,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    for folder in [out, *[p for p in out.rglob("*") if p.is_dir()]]:
        if folder != out:
            (folder / "__init__.py").touch()
    (out / "notify" / "py.typed").touch()


def same_tree(a: Path, b: Path) -> bool:
    cmp = filecmp.dircmp(a, b, ignore=["__pycache__"])
    if cmp.left_only or cmp.right_only or cmp.funny_files:
        return False
    _, mismatch, errors = filecmp.cmpfiles(a, b, cmp.common_files, shallow=False)
    if mismatch or errors:
        return False
    return all(same_tree(a / d, b / d) for d in cmp.common_dirs)


def main() -> None:
    check = "--check" in sys.argv[1:]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "gen"
        out.mkdir()
        generate(out)
        if check:
            if not GEN.exists() or not same_tree(out, GEN):
                raise SystemExit("gen/ is stale: run `python scripts/gen_proto.py`")
            print("gen/ is up to date")
            return
        if GEN.exists():
            shutil.rmtree(GEN)
        shutil.copytree(out, GEN)
        print(f"generated {GEN}")


if __name__ == "__main__":
    main()
