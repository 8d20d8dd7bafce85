"""Typed, strict reads of one TOML table, Klipper-style.

Every read names its option; after a section's owner has read what it understands,
``finish()`` rejects any option nobody read. Errors carry file, section and option so the
operator can go straight to the line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
_MISSING: Any = object()


class ConfigError(Exception):
    def __init__(self, file: Path | str, section: str, option: str | None, problem: str) -> None:
        self.file = str(file)
        self.section = section
        self.option = option
        self.problem = problem
        where = f"[{section}]" + (f" {option}" if option else "")
        super().__init__(f"{self.file}: {where}: {problem}")


class SectionReader:
    def __init__(self, file: Path, section: str, table: dict[str, Any]) -> None:
        self.file = file
        self.section = section
        self._table = table
        self._read: set[str] = set()

    def error(self, option: str | None, problem: str) -> ConfigError:
        return ConfigError(self.file, self.section, option, problem)

    def has(self, option: str) -> bool:
        return option in self._table

    def _get(self, option: str, default: Any, kinds: tuple[type, ...], kind_name: str) -> Any:
        self._read.add(option)
        if option not in self._table:
            if default is _MISSING:
                raise self.error(option, "required option is missing")
            return default
        value = self._table[option]
        # bool is an int subclass in Python; TOML true must not pass as a number.
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            raise self.error(option, f"expected {kind_name}, got {type(value).__name__} {value!r}")
        return value

    def get_str(self, option: str, default: Any = _MISSING, *, allow_empty: bool = False) -> str:
        value: str = self._get(option, default, (str,), "a string")
        if value is not None and not allow_empty and value == "":
            raise self.error(option, "must not be empty")
        return value

    def get_int(
        self,
        option: str,
        default: Any = _MISSING,
        *,
        minval: int | None = None,
        maxval: int | None = None,
    ) -> int:
        value: int = self._get(option, default, (int,), "an integer")
        if value is not None and minval is not None and value < minval:
            raise self.error(option, f"must be at least {minval}, got {value}")
        if value is not None and maxval is not None and value > maxval:
            raise self.error(option, f"must be at most {maxval}, got {value}")
        return value

    def get_float(
        self,
        option: str,
        default: Any = _MISSING,
        *,
        above: float | None = None,
        maxval: float | None = None,
    ) -> float:
        value = float(self._get(option, default, (int, float), "a number"))
        if above is not None and value <= above:
            raise self.error(option, f"must be above {above}, got {value}")
        if maxval is not None and value > maxval:
            raise self.error(option, f"must be at most {maxval}, got {value}")
        return value

    def get_bool(self, option: str, default: Any = _MISSING) -> bool:
        value: bool = self._get(option, default, (bool,), "true or false")
        return value

    def get_choice(self, option: str, choices: list[str], default: Any = _MISSING) -> str:
        value = self.get_str(option, default)
        if value not in choices:
            raise self.error(option, f"must be one of {', '.join(choices)}; got {value!r}")
        return value

    def get_path(self, option: str, default: Any = _MISSING, *, must_exist: bool = False) -> Path:
        """A path; relative paths are taken relative to the config file's folder."""
        raw = self.get_str(option, default)
        if raw is None:
            return raw  # type: ignore[unreachable]
        path = Path(raw)
        if not path.is_absolute():
            path = self.file.parent / path
        if must_exist and not path.exists():
            raise self.error(option, f"file {path} does not exist")
        return path

    def finish(self) -> None:
        unknown = sorted(set(self._table) - self._read)
        if unknown:
            raise self.error(unknown[0], "unknown option")
