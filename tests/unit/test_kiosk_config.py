"""``[kiosk]``: strict, loopback only, WCAG's 20 s for more time."""

from __future__ import annotations

from pathlib import Path

import pytest

from branchline.agent.config import load_config
from branchline.common.config_reader import ConfigError

BASE = """
[terminal]
id = "T-0001"
branch = "BR-001"
state_dir = "state"
insecure = true
"""


def load(tmp_path: Path, kiosk: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "agent.toml"
    path.write_text(BASE + "\n[kiosk]\n" + kiosk)
    return load_config(path)


def test_defaults_without_a_kiosk_section(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(BASE)
    kiosk = load_config(path).kiosk
    assert kiosk.enabled and kiosk.listen == "127.0.0.1:8780"
    assert (kiosk.host, kiosk.port, kiosk.language) == ("127.0.0.1", 8780, "zh-CN")
    assert kiosk.warning_seconds >= 20


def test_options_are_read(tmp_path: Path) -> None:
    kiosk = load(
        tmp_path,
        'listen = "[::1]:0"\nlanguage = "en"\ninactivity_timeout = 45\nwarning_seconds = 25\n'
        "enabled = false\ncard_seconds = 30\npin_seconds = 20\n",
    ).kiosk
    assert (kiosk.host, kiosk.port, kiosk.listen) == ("::1", 0, "[::1]:0")
    assert (kiosk.language, kiosk.inactivity_timeout, kiosk.warning_seconds) == ("en", 45, 25)
    assert not kiosk.enabled
    assert load(tmp_path, 'listen = "localhost:9000"').kiosk.port == 9000


@pytest.mark.parametrize(
    ("text", "option", "problem"),
    [
        ('listen = "0.0.0.0:8780"', "listen", "not a loopback address"),
        ('listen = "192.168.1.5:8780"', "listen", "not a loopback address"),
        ('listen = "kiosk.example:8780"', "listen", "not an IP address or localhost"),
        ('listen = "127.0.0.1"', "listen", "expected host:port"),
        ('listen = "127.0.0.1:99999"', "listen", "port must be a number from 0 to 65535"),
        ("warning_seconds = 10", "warning_seconds", "must be at least 20"),
        ('language = "fr"', "language", "must be one of zh-CN, en"),
        ("inactivity_timeout = 0", "inactivity_timeout", "must be above"),
        ('inactivity_timeout = "60"', "inactivity_timeout", "expected a number"),
        ("colour = 1", "colour", "unknown option"),
    ],
)
def test_bad_kiosk_options_name_the_option(
    tmp_path: Path, text: str, option: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as error:
        load(tmp_path, text)
    message = str(error.value)
    assert "[kiosk]" in message or "kiosk" in message
    assert option in message and problem in message
