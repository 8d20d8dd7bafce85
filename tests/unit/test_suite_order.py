"""The suite's slowest-first list (tests/conftest.py) names modules that exist, each once, and
``make test`` keeps xdist from re-sorting them."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import SLOWEST_FIRST

ROOT = Path(__file__).resolve().parents[2]


def test_every_listed_module_exists_once() -> None:
    missing = [path for path in SLOWEST_FIRST if not (ROOT / path).is_file()]
    assert missing == [], f"tests/conftest.py SLOWEST_FIRST names no such module: {missing}"
    assert len(set(SLOWEST_FIRST)) == len(SLOWEST_FIRST)


def test_make_test_keeps_the_collection_order() -> None:
    recipe = (ROOT / "Makefile").read_text()
    line = next(x for x in recipe.splitlines() if "pytest" in x and "--dist loadfile" in x)
    assert "--no-loadscope-reorder" in line, line
