"""README.md and docs/ never point at something that is not in the repository.

Checked in README.md and every docs/**/*.md:

- every relative Markdown link ``[text](path#anchor)`` resolves to a file or folder, and its
  ``#anchor`` (when given) to a heading of the target page;
- every inline code span that is a repository path (``agent/uplink.py``, ``server/tube/``)
  exists, unless it is a file made at run time (``RUNTIME_PREFIXES``) or a page another branch
  writes (``PENDING``);
- README.md stays short (at most ``README_MAX_LINES``) and keeps the two commands;
- the references are complete: every option of the CLI parsers in ``PARSERS`` is in
  docs/cli.md or docs/configuration.md, and every driver's options (the dataclass its
  ``read_options`` returns) and every option the agent's config reader asks for is in its
  section of docs/configuration.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import re
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
README_MAX_LINES = 160

# Top-level names a backticked path starts with; anything else (`agent.toml`, `RUN_DIR/...`,
# `/dev/ttyUSB0`) is not a repository path.
REPO_TOP = frozenset(
    {
        "agent",
        "bench",
        "common",
        "docs",
        "drivers",
        "hardware-sim",
        "ops",
        "protos",
        "server",
        "systemd",
        "tests",
        "var",
        ".ci",
        ".venv",
        "Makefile",
        "README.md",
        "pyproject.toml",
        "setup.py",
    }
)
# Made at run time, never committed: the demo's and the tests' state, the virtualenv.
RUNTIME_PREFIXES = ("var/", ".venv/")
# Pages written on another branch at the same time. Once one exists here, remove it from this
# set (test_pending_pages_are_not_there_yet says so), so the list cannot rot.
PENDING: frozenset[str] = frozenset()

# Argument parsers whose every option the CLI and configuration references must name:
# (module, function returning the parser). When a module moves, move it here too.
PARSERS = (
    ("branchline.server.main", "build_parser"),
    ("branchline.agent.diag", "build_parser"),
    ("branchline.server.teller.main", "build_parser"),
    ("branchline.server.hsm_cli", "_parser"),
    ("branchline.server.mobile_gateway.main", "build_parser"),
    ("branchline.server.assistant.cli", "build_parser"),
)

_FENCE = re.compile(r"^(```|~~~)")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1")
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_PATH = re.compile(r"^[A-Za-z0-9_.\-/]+$")
_HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")


@dataclass(frozen=True)
class Problem:
    page: str
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.page}:{self.line}: {self.what}"


def doc_pages(root: Path = ROOT) -> list[Path]:
    pages = [root / "README.md"]
    pages.extend(sorted((root / "docs").rglob("*.md")))
    return [p for p in pages if p.is_file()]


def prose_lines(text: str) -> list[tuple[int, str]]:
    """The lines outside fenced code blocks, numbered from 1 (commands in fences are examples,
    not references)."""
    lines: list[tuple[int, str]] = []
    fenced = False
    for number, line in enumerate(text.splitlines(), start=1):
        if _FENCE.match(line.strip()):
            fenced = not fenced
            continue
        if not fenced:
            lines.append((number, line))
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to '-'."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


@cache
def anchors(page: Path) -> frozenset[str]:
    found: set[str] = set()
    for _, line in prose_lines(page.read_text(encoding="utf-8")):
        match = _HEADING.match(line)
        if match:
            found.add(slug(match.group(1)))
    return frozenset(found)


def repo_path(span: str) -> str | None:
    """The repository path a code span names, or None when it is not a path."""
    text = span.strip()
    if not _PATH.match(text) or "/" not in text and text not in REPO_TOP:
        return None
    top = text.split("/", 1)[0]
    if top not in REPO_TOP or ".." in text.split("/"):
        return None
    return text


def _check_link(root: Path, page: Path, number: int, target: str) -> Problem | None:
    rel = page.relative_to(root).as_posix()
    if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
        return None
    path_part, _, anchor = target.partition("#")
    dest = (page.parent / path_part).resolve() if path_part else page
    if path_part and not dest.is_relative_to(root):
        return Problem(rel, number, f"link {target!r} leaves the repository")
    dest_rel = dest.relative_to(root).as_posix() if path_part else rel
    if not dest.exists():
        if dest_rel in PENDING:
            return None
        return Problem(rel, number, f"link {target!r}: {dest_rel} does not exist")
    if anchor and dest.suffix == ".md" and anchor not in anchors(dest):
        return Problem(rel, number, f"link {target!r}: no heading #{anchor} in {dest_rel}")
    return None


def check_page(page: Path, root: Path = ROOT) -> list[Problem]:
    problems: list[Problem] = []
    rel = page.relative_to(root).as_posix()
    for number, line in prose_lines(page.read_text(encoding="utf-8")):
        for match in _LINK.finditer(_CODE_SPAN.sub("", line)):
            problem = _check_link(root, page, number, match.group(1))
            if problem is not None:
                problems.append(problem)
        for match in _CODE_SPAN.finditer(line):
            path = repo_path(match.group(2))
            if path is None or f"{path}/".startswith(RUNTIME_PREFIXES) or path in PENDING:
                continue
            if not (root / path).exists():
                problems.append(Problem(rel, number, f"`{path}` does not exist"))
    return problems


def test_docs_exist() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in doc_pages()}
    for page in (
        "docs/architecture.md",
        "docs/configuration.md",
        "docs/cli.md",
        "docs/flows/pin-and-sessions.md",
        "docs/flows/tube.md",
        "docs/flows/dispatch.md",
        "docs/flows/calls.md",
        "docs/flows/recordings.md",
        "docs/protocols/card-reader.md",
        "docs/protocols/pin-pad.md",
        "docs/protocols/id-reader.md",
        "docs/protocols/printer.md",
        "docs/protocols/tube-station.md",
    ):
        assert page in names, f"{page} is missing"


def test_every_link_and_path_exists() -> None:
    problems = [str(p) for page in doc_pages() for p in check_page(page)]
    assert not problems, "references to nothing:\n" + "\n".join(problems)


def test_readme_is_short_and_keeps_the_two_commands() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= README_MAX_LINES, (
        f"README.md has {len(text.splitlines())} lines; at most {README_MAX_LINES}: "
        "move detail into docs/"
    )
    assert "make demo" in text and "make test" in text


def test_readme_does_not_cite_the_design_card() -> None:
    # The design lives outside the repository; a citation would point at nothing.
    for page in doc_pages():
        assert "DESIGN.md" not in page.read_text(encoding="utf-8"), page


def test_pending_pages_are_not_there_yet() -> None:
    for name in PENDING:
        assert not (ROOT / name).exists(), f"{name} exists now: remove it from PENDING"


def test_the_checker_finds_what_is_missing(tmp_path: Path) -> None:
    (tmp_path / "agent").mkdir()
    (tmp_path / "agent" / "uplink.py").write_text("")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# Title\n\n## The wire: v1\n")
    page = tmp_path / "README.md"
    page.write_text(
        "# Readme\n"
        "See `agent/uplink.py`, `agent/gone.py`, `var/demo/agent.log` and `agent.toml`.\n"
        "[ok](docs/a.md#the-wire-v1) [bad anchor](docs/a.md#nope) [gone](docs/b.md)\n"
        "[web](https://example.com) [self](#readme) [self, wrong](#title)\n"
        "```\n`agent/in_a_fence.py` [fence](nowhere.md)\n```\n"
    )
    problems = [p.what for p in check_page(page, tmp_path)]
    assert problems == [
        "`agent/gone.py` does not exist",
        "link 'docs/a.md#nope': no heading #nope in docs/a.md",
        "link 'docs/b.md': docs/b.md does not exist",
        "link '#title': no heading #title in README.md",
    ]


def parser_words(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[str]:
    """Every long option and subcommand name of ``parser`` and its subparsers, as
    ``"cmd sub --option"``."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield " ".join((*path, name))
                yield from parser_words(sub, (*path, name))
        else:
            for option in action.option_strings:
                if option.startswith("--") and option != "--help":
                    yield " ".join((*path, option))


def section(page: Path, heading: str) -> str:
    """The text under the heading ``heading`` up to the next heading of any level."""
    lines = page.read_text(encoding="utf-8").splitlines()
    out: list[str] = []
    inside = False
    for line in lines:
        match = _HEADING.match(line)
        if match:
            if inside:
                break
            inside = match.group(1).strip() == heading
            continue
        if inside:
            out.append(line)
    assert out, f"{page.relative_to(ROOT)} has no section {heading!r}"
    return "\n".join(out)


def test_every_cli_option_and_command_is_documented() -> None:
    text = "".join(
        (ROOT / "docs" / n).read_text(encoding="utf-8") for n in ("cli.md", "configuration.md")
    )
    missing: list[str] = []
    for module, function in PARSERS:
        build: Callable[[], argparse.ArgumentParser] = getattr(
            importlib.import_module(module), function
        )
        for words in parser_words(build()):
            word = words.split()[-1]
            tail = r"(?![\w-])" if word.startswith("--") else r"\b"
            if not re.search(re.escape(word) + tail, text):
                missing.append(f"{build().prog} {words}")
    assert not missing, "not in docs/cli.md or docs/configuration.md:\n" + "\n".join(missing)


def test_every_driver_option_is_in_its_section() -> None:
    page = ROOT / "docs" / "configuration.md"
    missing: list[str] = []
    drivers = sorted(entry_points(group="branchline.drivers"), key=lambda ep: ep.name)
    assert drivers, "no drivers registered: is the package installed (make venv)?"
    for entry in drivers:
        options = typing.get_type_hints(entry.load().read_options)["return"]
        text = section(page, f"driver {entry.name}")
        missing.extend(
            f"[device.*] driver {entry.name}: {field.name}"
            for field in dataclasses.fields(options)
            if f"`{field.name}`" not in text
        )
    from branchline.agent.config import TransactionSettings

    text = section(page, "transactions")
    missing.extend(
        f"[transactions] {field.name}"
        for field in dataclasses.fields(TransactionSettings)
        if f"`{field.name}`" not in text
    )
    assert not missing, "options missing from docs/configuration.md:\n" + "\n".join(missing)


def test_every_agent_config_option_is_in_its_section(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Load two agent configs (plaintext, and mTLS with every device) while recording each
    option the strict reader asks for; each must be documented in its section."""
    from branchline.agent.config import DEVICE_NAMES, load_config
    from branchline.common.config_reader import SectionReader

    asked: set[tuple[str, str]] = set()
    original = SectionReader._get

    def recording(self: SectionReader, option: str, *args: Any) -> Any:
        asked.add((self.section, option))
        return original(self, option, *args)

    monkeypatch.setattr(SectionReader, "_get", recording)
    for name in ("ca.pem", "t.pem", "t.key"):
        (tmp_path / name).write_text("")
    drivers = {
        entry.load().device_class: entry.name for entry in entry_points(group="branchline.drivers")
    }
    devices = "".join(
        f'[device.{name}]\ndriver = "{drivers[name]}"\n'
        + (
            'uri = "ipp://127.0.0.1:631/ipp/print"\n'
            if name == "cheque_printer"
            else 'port = "loop://"\n'
        )
        + ('gpio = "sim"\ngpio_sim_path = "gpio"\n' if name == "tube_station" else "")
        for name in DEVICE_NAMES
    )
    plain = '[terminal]\nid = "T-1"\nbranch = "B"\nstate_dir = "s"\ninsecure = true\n'
    secure = (
        '[terminal]\nid = "T-1"\nbranch = "B"\nstate_dir = "s"\nca_file = "ca.pem"\n'
        'cert_file = "t.pem"\nkey_file = "t.key"\n[transactions]\n' + devices
    )
    for number, text in enumerate((plain, secure)):
        path = tmp_path / f"agent{number}.toml"
        path.write_text(text)
        load_config(path)

    page = ROOT / "docs" / "configuration.md"
    sections = {
        "terminal": section(page, "terminal"),
        "transactions": section(page, "transactions"),
    }
    device_text = section(page, "device.NAME")
    missing: list[str] = []
    for where, option in sorted(asked):
        if where.startswith("device."):
            text = device_text + section(page, f"driver {drivers[where.removeprefix('device.')]}")
        else:
            text = sections[where]
        if f"`{option}`" not in text:
            missing.append(f"[{where}] {option}")
    assert ("terminal", "insecure") in asked and ("device.pin_pad", "key_slot") in asked
    assert not missing, "options missing from docs/configuration.md:\n" + "\n".join(missing)
