"""The one filter between the kiosk session and the page."""

from __future__ import annotations

import json

from branchline.agent.kiosk.redact import DROPPED, encode, scrub

PAN = "4761739001010010"


def test_secret_keys_are_dropped_wherever_they_are() -> None:
    frame = {
        "type": "screen",
        "data": {
            "pan": PAN,
            "nested": [{"pin_block": "0412AC89ABCDEF12", "ksn": "FFFF9876543210E00001"}],
            "session_token": "tok",
            "session_id": "abc",
            "track2": f";{PAN}=2512?",
            "digits": 4,
        },
    }
    clean, found = scrub(frame)
    assert clean == {"type": "screen", "data": {"nested": [{}], "digits": 4}}
    assert sorted(found) == [
        "data.nested[0].ksn",
        "data.nested[0].pin_block",
        "data.pan",
        "data.session_id",
        "data.session_token",
        "data.track2",
    ]


def test_card_numbers_and_track_data_in_text_are_masked_or_dropped() -> None:
    frame = {
        "message": f"card {PAN} declined",
        "raw": f"%B{PAN}^DOE/JOHN^2512101?",
        "account": "ACC-1",
        "not_a_card": "1234567890123",  # fails the Luhn check: left alone
    }
    clean, found = scrub(frame)
    assert clean["message"] == "card 476173******0010 declined"
    assert clean["raw"] == DROPPED
    assert clean["account"] == "ACC-1"
    assert clean["not_a_card"] == "1234567890123"
    assert sorted(found) == ["message", "raw"]


def test_the_sessions_own_secrets_are_removed_anywhere() -> None:
    token = "eyJ0ZXJtaW5hbCI6IksxIn0.c2lnbmF0dXJl"
    frame = {"data": {"note": f"token={token}", "list": [token]}}
    clean, found = scrub(frame, [token, ""])
    assert token not in json.dumps(clean)
    assert found == ["data.note", "data.list[0]"]


def test_encode_gives_the_clean_json_and_nothing_changes_a_clean_frame() -> None:
    frame = {"type": "screen", "data": {"pan_masked": "476173******0010", "digits": 3}}
    assert json.loads(encode(frame)) == frame
    assert scrub(frame) == (frame, [])
    assert PAN not in encode({"data": {"pan": PAN, "text": PAN}})


def test_a_recordings_sha256_reaches_the_page_whole() -> None:
    digest = "db76454a4b5eb60f691194d29564863028942b05f1f0dcefde17b767aca1bb5d"
    clean, found = scrub({"recordings": [{"sha256": digest, "note": f"card {PAN}"}]})
    assert clean["recordings"][0]["sha256"] == digest and found == ["recordings[0].note"]
