"""ICE servers for the pages' WebRTC (common/ice.py), from the agent's [kiosk] and the
console's options: good URLs pass, bad ones are refused naming what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from branchline.agent.kiosk.settings import read_kiosk
from branchline.common.config_reader import ConfigError, SectionReader
from branchline.common.errors import InvalidArgument
from branchline.common.ice import parse_ice_servers
from branchline.server.console.main import build_parser, settings_from


def test_stun_and_turn_for_the_page() -> None:
    servers = parse_ice_servers(
        "stun:stun.bank.example:3478, turns:turn.bank.example:443, turn:[::1]:3478?transport=tcp",
        "kiosk",
        "s3cret",
    )
    assert servers.for_page() == [
        {"urls": ["stun:stun.bank.example:3478"]},
        {
            "urls": ["turns:turn.bank.example:443", "turn:[::1]:3478?transport=tcp"],
            "username": "kiosk",
            "credential": "s3cret",
        },
    ]
    assert parse_ice_servers("").for_page() == []


@pytest.mark.parametrize(
    ("urls", "username", "credential", "says"),
    [
        ("http://stun.example", "", "", "not a STUN/TURN URL"),
        ("stun:host:99999", "", "", "port must be 1-65535"),
        ("stun:host?transport=tcp", "", "", "for TURN URLs only"),
        ("turn:host:3478", "", "", "needs ice_username and ice_credential"),
        (",".join(f"stun:h{i}" for i in range(9)), "", "", "at most 8"),
    ],
)
def test_bad_servers_are_refused(urls: str, username: str, credential: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse_ice_servers(urls, username, credential)


def test_kiosk_section_reads_a_list_and_names_the_option(tmp_path: Path) -> None:
    table = {"ice_servers": ["stun:s.example", "turn:t.example"], "ice_username": "u"}
    table["ice_credential"] = "c"
    settings = read_kiosk(SectionReader(tmp_path / "agent.toml", "kiosk", table))
    assert settings.ice.urls == ("stun:s.example", "turn:t.example")
    with pytest.raises(ConfigError, match="ice_servers"):
        read_kiosk(SectionReader(tmp_path / "agent.toml", "kiosk", {"ice_servers": ["turn:t"]}))
    with pytest.raises(ConfigError, match="ice_servers"):
        read_kiosk(SectionReader(tmp_path / "agent.toml", "kiosk", {"ice_servers": [1]}))


def test_console_options(tmp_path: Path) -> None:
    secret = tmp_path / "turn.secret"
    secret.write_text("s3cret\n")
    base = ["--as", "teller:T1", "--insecure"]
    args = build_parser().parse_args(
        [*base, "--ice-server", "turn:t.example", "--ice-username", "u",
         "--ice-credential-file", str(secret)]
    )  # fmt: skip
    assert settings_from(args).ice.credential == "s3cret"
    bad = build_parser().parse_args([*base, "--ice-server", "turn:t.example"])
    with pytest.raises(InvalidArgument) as refused:
        settings_from(bad)
    assert refused.value.field == "ice_server"
    missing = build_parser().parse_args([*base, "--ice-credential-file", str(tmp_path / "none")])
    with pytest.raises(InvalidArgument) as unread:
        settings_from(missing)
    assert unread.value.field == "ice_credential_file"
