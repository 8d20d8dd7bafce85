"""No hand-written module over ~500 lines and no function over ~60 lines without a reason.

A reason is a comment: ``# long-module: <why>`` in a module's first 30 lines, or
``# long: <why>`` on the line directly above a function's ``def`` (or above its decorators).
Generated code (``*_pb2*``) and Alembic migrations are not hand-written and are skipped.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = ("agent", "drivers", "hardware-sim", "server", "common", "bench", "tests")
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 60


def hand_written_modules(root: Path = ROOT) -> list[Path]:
    out = []
    for folder in FOLDERS:
        for path in sorted((root / folder).rglob("*.py")):
            if "_pb2" in path.name or "migrations" in path.parts:
                continue
            out.append(path)
    return out


def oversized(path: Path) -> list[str]:
    """What in ``path`` is too long and carries no reason."""
    text = path.read_text()
    lines = text.splitlines()
    found: list[str] = []
    rel = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    if len(lines) > MAX_MODULE_LINES and not any(
        line.lstrip().startswith("# long-module:") for line in lines[:30]
    ):
        found.append(f"{rel}: {len(lines)} lines (no '# long-module:' reason)")
    for node in ast.walk(ast.parse(text)):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        length = (node.end_lineno or node.lineno) - node.lineno + 1
        if length <= MAX_FUNCTION_LINES:
            continue
        first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
        above = lines[first - 2].strip() if first >= 2 else ""
        if not above.startswith("# long:"):
            found.append(
                f"{rel}:{node.lineno}: {node.name} is {length} lines (no '# long:' reason)"
            )
    return found


def test_modules_and_functions_are_short_or_say_why() -> None:
    problems = [p for path in hand_written_modules() for p in oversized(path)]
    assert not problems, "\n".join(problems)


def test_the_check_finds_a_long_function_without_a_reason(tmp_path: Path) -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(70))
    bad = tmp_path / "bad.py"
    bad.write_text(f"def f() -> None:\n{body}\n")
    assert oversized(bad) and "f is 71 lines" in oversized(bad)[0]
    good = tmp_path / "good.py"
    good.write_text(f"# long: a table of seventy steps\ndef f() -> None:\n{body}\n")
    assert oversized(good) == []
