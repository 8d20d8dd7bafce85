"""Run mypy over the ``branchline`` namespace as it is imported (``make lint``).

The source folders are not named like their import paths (``hardware-sim/`` is
``branchline.sim``), so mypy is pointed at a tree of symlinks that mirrors the namespace.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TREE = ROOT / "build" / "typecheck"
FOLDERS = {
    "agent": "agent",
    "server": "server",
    "drivers": "drivers",
    "sim": "hardware-sim",
    "common": "common",
    "v1": "protos/branchline/v1",
}


def build_tree() -> Path:
    if TREE.exists():
        shutil.rmtree(TREE)
    package = TREE / "branchline"
    package.mkdir(parents=True)
    for name, folder in FOLDERS.items():
        (package / name).symlink_to(ROOT / folder, target_is_directory=True)
    return TREE


def main() -> int:
    tree = build_tree()
    # One cache for both runs: the second finds the namespace's modules (through MYPYPATH,
    # at the same paths) already checked instead of analysing them all again.
    cache = ["--cache-dir", str(ROOT / ".mypy_cache")]
    command = [
        sys.executable,
        "-m",
        "mypy",
        "--config-file",
        str(ROOT / "pyproject.toml"),
        *cache,
        "--explicit-package-bases",
        "-p",
        "branchline",
        *sys.argv[1:],
    ]
    code = subprocess.call(command, cwd=tree)
    # Tests and benchmarks import branchline from the tree above, themselves from the root.
    env = {**os.environ, "MYPYPATH": str(tree)}
    command = [
        sys.executable,
        "-m",
        "mypy",
        "--config-file",
        str(ROOT / "pyproject.toml"),
        *cache,
        "tests",
        "bench",
        *sys.argv[1:],
    ]
    return code or subprocess.call(command, cwd=ROOT, env=env)


if __name__ == "__main__":
    sys.exit(main())
