"""No module under tests/, bench/ or hardware-sim/ imports from a ``test_*`` module: helpers two
test modules share live in support modules (``*_support.py``, ``*_fakes.py``, ...), so running
one test module never collects another's tests or fixtures by the back door."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHECKED = ("tests", "bench", "hardware-sim")
OURS = ("tests", "bench")  # the packages those folders import from (aiohttp.test_utils is not)


def _is_test_module(dotted: str) -> bool:
    parts = dotted.split(".")
    ours = dotted.startswith(".") or parts[0] in OURS
    return ours and any(part.startswith("test_") for part in parts)


def imports_of_test_modules(source: str) -> list[str]:
    """The imports in ``source`` that name a ``test_*`` module (absolute or relative)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if _is_test_module(alias.name)]
        elif isinstance(node, ast.ImportFrom):
            module = "." * node.level + (node.module or "")
            if _is_test_module(module):
                found.append(module)
            else:  # ``from tests.unit import test_x``
                named = [f"{module}.{alias.name}" for alias in node.names]
                found += [name for name in named if _is_test_module(name)]
    return found


def test_the_check_finds_every_form_of_import() -> None:
    source = (
        "import tests.unit.test_a\n"
        "from tests.integration.test_b import helper\n"
        "from tests.browser import test_c\n"
        "from .test_d import x\n"
        "def f():\n    from tests.unit.test_e import y\n"
        "from tests.unit.link_support import until\n"
        "from aiohttp.test_utils import TestClient\n"
        "import pytest\n"
    )
    assert imports_of_test_modules(source) == [
        "tests.unit.test_a",
        "tests.integration.test_b",
        "tests.browser.test_c",
        ".test_d",
        "tests.unit.test_e",
    ]


def test_no_module_imports_from_a_test_module() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}: {name}"
        for folder in CHECKED
        for path in sorted((ROOT / folder).rglob("*.py"))
        if ".venv" not in path.parts
        for name in imports_of_test_modules(path.read_text(encoding="utf-8"))
    ]
    assert offenders == [], "move what they share into a support module:\n" + "\n".join(offenders)
