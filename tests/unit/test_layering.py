"""The layers import only downwards: checked by parsing every module's imports (ast).

- ``branchline.agent`` never imports ``branchline.server`` or ``branchline.sim``;
- ``branchline.server`` never imports ``branchline.agent`` or ``branchline.sim``;
- ``branchline.drivers`` imports only ``branchline.drivers`` and ``branchline.common``;
- ``branchline.sim`` never imports ``branchline.server``;
- ``branchline.common`` imports only ``branchline.common`` and ``branchline.v1``.

Code two layers share lives in ``branchline.common``. Every import counts, including those
inside functions and under ``TYPE_CHECKING``: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Source folder -> import name (hardware-sim/ is branchline.sim), as setup.py maps them.
FOLDERS = {
    "agent": "branchline.agent",
    "server": "branchline.server",
    "drivers": "branchline.drivers",
    "hardware-sim": "branchline.sim",
    "common": "branchline.common",
}


@dataclass(frozen=True)
class Rule:
    """Modules under ``layer`` may import ``branchline.*`` only as this rule allows."""

    layer: str
    forbidden: tuple[str, ...] = ()
    only: tuple[str, ...] | None = None  # when set, the only branchline packages allowed

    def refuses(self, target: str) -> bool:
        if not _within(target, "branchline") or target == "branchline":
            return False
        if self.only is not None and not any(_within(target, p) for p in self.only):
            return True
        return any(_within(target, p) for p in self.forbidden)


RULES = (
    Rule("branchline.agent", forbidden=("branchline.server", "branchline.sim")),
    Rule("branchline.server", forbidden=("branchline.agent", "branchline.sim")),
    Rule("branchline.drivers", only=("branchline.drivers", "branchline.common")),
    Rule("branchline.sim", forbidden=("branchline.server",)),
    Rule("branchline.common", only=("branchline.common", "branchline.v1")),
)


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def _module_name(path: Path, folder: Path, package: str) -> tuple[str, bool]:
    """The dotted name of ``path`` and whether it is a package's ``__init__``."""
    parts = list(path.relative_to(folder).with_suffix("").parts)
    is_package = parts[-1] == "__init__"
    if is_package:
        parts.pop()
    return ".".join([package, *parts]), is_package


def imported_names(source: str, module: str, is_package: bool) -> list[tuple[int, str]]:
    """(line, absolute dotted name) of every import in ``source``, relative ones resolved."""
    out: list[tuple[int, str]] = []
    here = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            # `from branchline import server` imports branchline.server.
            if target == "branchline":
                out.extend((node.lineno, f"branchline.{a.name}") for a in node.names)
            else:
                out.append((node.lineno, target))
    return out


def violations(root: Path, folders: dict[str, str], rules: tuple[Rule, ...]) -> list[str]:
    """Every import under ``root``'s folders that a rule refuses, as ``file:line: a -> b``."""
    found: list[str] = []
    for folder_name, package in folders.items():
        folder = root / folder_name
        for path in sorted(folder.rglob("*.py")):
            if "_pb2" in path.name:
                continue
            module, is_package = _module_name(path, folder, package)
            source = path.read_text(encoding="utf-8")
            for line, target in imported_names(source, module, is_package):
                for rule in rules:
                    if _within(module, rule.layer) and rule.refuses(target):
                        where = path.relative_to(root)
                        found.append(f"{where}:{line}: {module} imports {target}")
    return found


def test_the_layers_import_only_downwards() -> None:
    assert violations(ROOT, FOLDERS, RULES) == []


def test_every_source_folder_is_checked() -> None:
    # A folder added to the namespace without a rule would escape the check.
    checked = {rule.layer for rule in RULES}
    assert checked == set(FOLDERS.values())
    assert all((ROOT / folder).is_dir() for folder in FOLDERS)


def _tree(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def test_a_forbidden_import_is_reported(tmp_path: Path) -> None:
    _tree(
        tmp_path,
        {
            "agent/__init__.py": "",
            "agent/ok.py": "from branchline.drivers.base import Driver\n",
            "agent/bad.py": "import os\n\n\ndef f():\n    from branchline.server import app\n",
            "server/__init__.py": "",
            "server/bad.py": "from branchline import sim\n",
            "drivers/__init__.py": "",
            "drivers/pin/__init__.py": "",
            "drivers/pin/ok.py": "from ..base import Driver\nfrom branchline.common import errors\n",
            "drivers/pin/bad.py": "import branchline.agent.uplink\n",
            "drivers/pin/bad_relative.py": "from ...agent import uplink\n",
            "hardware-sim/__init__.py": "",
            "hardware-sim/bad.py": "from branchline.server.hsm import open_hsm\n",
            "common/__init__.py": "",
            "common/ok.py": "from branchline.v1 import common_pb2\n",
            "common/bad.py": "from branchline.drivers import base\n",
        },
    )
    found = violations(tmp_path, FOLDERS, RULES)
    assert found == [
        "agent/bad.py:5: branchline.agent.bad imports branchline.server",
        "server/bad.py:1: branchline.server.bad imports branchline.sim",
        "drivers/pin/bad.py:1: branchline.drivers.pin.bad imports branchline.agent.uplink",
        "drivers/pin/bad_relative.py:1: branchline.drivers.pin.bad_relative imports "
        "branchline.agent",
        "hardware-sim/bad.py:1: branchline.sim.bad imports branchline.server.hsm",
        "common/bad.py:1: branchline.common.bad imports branchline.drivers",
    ]


def test_relative_imports_resolve_against_the_package() -> None:
    source = "from . import a\nfrom .. import b\nfrom ..c import d\n"
    assert imported_names(source, "branchline.drivers.pin_pad", is_package=True) == [
        (1, "branchline.drivers.pin_pad"),
        (2, "branchline.drivers"),
        (3, "branchline.drivers.c"),
    ]
    assert imported_names(source, "branchline.drivers.pin_pad.frames", is_package=False) == [
        (1, "branchline.drivers.pin_pad"),
        (2, "branchline.drivers"),
        (3, "branchline.drivers.c"),
    ]
