"""The soft HSM's keystore: sealed on disk, tamper-evident, written atomically."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest

from branchline.common.hsm import keystore as ks
from branchline.common.hsm.errors import (
    KeystoreError,
    KeystoreMissingError,
    KeystoreTamperedError,
    MasterKeyError,
    MasterKeyMismatchError,
)
from tests.unit.hsm_fixtures import (
    AES_BDK,
    MASTER,
    MASTER_HEX,
    PVK,
    TDES_BDK,
    TPK,
    ZPK,
    build_keystore,
)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    target = tmp_path / "hsm" / "keystore.json"
    build_keystore(target)
    return target


def test_no_key_material_in_the_file(path: Path) -> None:
    data = path.read_bytes()
    for key in (TDES_BDK, AES_BDK, ZPK, TPK, PVK):
        assert key not in data
        assert key.hex().encode() not in data.lower()
        assert key.hex().upper().encode() not in data
        assert base64.b64encode(key) not in data
    # Names, types and KCVs are sealed too: only the header is readable.
    document = json.loads(data)
    assert set(document) == {"format", "version", "cipher", "master_kcv", "nonce", "ciphertext"}
    # Key names appear nowhere readable. The ciphertext is checked as the bytes it encodes:
    # its base64 text holds "bdk" by chance about once in a few hundred keystores.
    readable = {k: v for k, v in document.items() if k not in ("nonce", "ciphertext")}
    assert "bdk" not in json.dumps(readable) and "zpk" not in json.dumps(readable)
    sealed = base64.b64decode(document["ciphertext"])
    assert b"bdk" not in sealed and b"zpk" not in sealed


def test_file_is_owner_only(path: Path) -> None:
    assert path.stat().st_mode & 0o777 == 0o600


def test_reopen_with_the_master_key(path: Path) -> None:
    records = ks.KeyStore(path, MASTER).records()
    assert sorted(records) == ["bdk", "bdk-aes", "pvk", "tpk", "zpk"]
    assert records["zpk"].value == ZPK
    assert ZPK.hex() not in repr(records["zpk"]).lower()


def test_wrong_master_key_is_named(path: Path) -> None:
    other = ks.MasterKey(bytes(range(32)))
    with pytest.raises(MasterKeyMismatchError, match="is not the one that sealed"):
        ks.KeyStore(path, other).records()


def _drop_zpk(records: dict[str, ks.StoredKey]) -> None:
    del records["zpk"]


def _edit(path: Path, change: dict[str, object]) -> None:
    document = json.loads(path.read_bytes())
    document.update(change)
    path.write_text(json.dumps(document))


def _flip(b64: str, index: int) -> str:
    raw = bytearray(base64.b64decode(b64))
    raw[index] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


@pytest.mark.parametrize("index", [0, 40, -1])  # first byte, middle, last tag byte
def test_flipped_ciphertext_bit_is_tamper(path: Path, index: int) -> None:
    document = json.loads(path.read_bytes())
    _edit(path, {"ciphertext": _flip(document["ciphertext"], index)})
    with pytest.raises(KeystoreTamperedError, match="integrity check"):
        ks.KeyStore(path, MASTER).records()


def test_changed_nonce_is_tamper(path: Path) -> None:
    document = json.loads(path.read_bytes())
    _edit(path, {"nonce": _flip(document["nonce"], 3)})
    with pytest.raises(KeystoreTamperedError):
        ks.KeyStore(path, MASTER).records()


def test_truncated_or_garbage_file_is_refused(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(KeystoreTamperedError, match="not valid JSON"):
        ks.KeyStore(path, MASTER).records()
    path.write_text('{"hello": 1}')
    with pytest.raises(KeystoreError, match="not a Branchline HSM keystore"):
        ks.KeyStore(path, MASTER).records()
    path.write_text(json.dumps({**json.loads(data), "version": 9}))
    with pytest.raises(KeystoreError, match="unsupported version"):
        ks.KeyStore(path, MASTER).records()
    path.write_text(json.dumps({**json.loads(data), "ciphertext": "***"}))
    with pytest.raises(KeystoreTamperedError, match="not base64"):
        ks.KeyStore(path, MASTER).records()


def test_tampered_file_is_noticed_by_a_running_store(path: Path) -> None:
    store = ks.KeyStore(path, MASTER)
    store.records()
    document = json.loads(path.read_bytes())
    _edit(path, {"ciphertext": _flip(document["ciphertext"], 10)})
    with pytest.raises(KeystoreTamperedError):
        store.records()


def test_missing_keystore(tmp_path: Path) -> None:
    with pytest.raises(KeystoreMissingError, match="no keystore at"):
        ks.KeyStore(tmp_path / "none.json", MASTER).records()


def test_atomic_write_keeps_the_old_file_when_the_rename_fails(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = path.read_bytes()

    def crash(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ks.os, "replace", crash)
    store = ks.KeyStore(path, MASTER)
    with pytest.raises(OSError):
        store.update(_drop_zpk)
    assert path.read_bytes() == before
    leftovers = [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []
    monkeypatch.undo()
    assert "zpk" in ks.KeyStore(path, MASTER).records()


def test_atomic_write_fsyncs_file_and_folder(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[bool] = []
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        synced.append(os.path.isdir(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(ks.os, "fsync", spy)
    ks.KeyStore(path, MASTER).update(lambda records: None)
    assert synced == [False, True]  # the temp file, then the folder after the rename


def test_a_failed_change_writes_nothing(path: Path) -> None:
    before = path.read_bytes()

    def refuse(records: dict[str, ks.StoredKey]) -> None:
        records.clear()
        raise KeystoreError("no")

    with pytest.raises(KeystoreError):
        ks.KeyStore(path, MASTER).update(refuse)
    assert path.read_bytes() == before


def test_each_write_uses_a_fresh_nonce(path: Path) -> None:
    store = ks.KeyStore(path, MASTER)
    first = json.loads(path.read_bytes())["nonce"]
    store.update(lambda records: None)
    assert json.loads(path.read_bytes())["nonce"] != first


def test_other_process_changes_are_picked_up(path: Path) -> None:
    reader = ks.KeyStore(path, MASTER)
    assert "zpk" in reader.records()
    ks.KeyStore(path, MASTER).update(_drop_zpk)
    assert "zpk" not in reader.records()


def test_master_key_from_env_and_file(tmp_path: Path) -> None:
    assert ks.MasterKey.resolve(None, {ks.MASTER_KEY_ENV: MASTER_HEX}).kcv == MASTER.kcv
    with pytest.raises(MasterKeyError, match=ks.MASTER_KEY_ENV):
        ks.MasterKey.resolve(None, {})
    with pytest.raises(MasterKeyError, match="64 hex digits"):
        ks.MasterKey.resolve(None, {ks.MASTER_KEY_ENV: "abcd"})
    key_file = tmp_path / "master.key"
    ks.write_master_key_file(key_file, MASTER)
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert ks.MasterKey.resolve(key_file, {}).kcv == MASTER.kcv
    with pytest.raises(MasterKeyError, match="already exists"):
        ks.write_master_key_file(key_file, MASTER)
    key_file.chmod(0o644)
    with pytest.raises(MasterKeyError, match="chmod 600"):
        ks.MasterKey.resolve(key_file, {})
    with pytest.raises(MasterKeyError, match="master key file"):
        ks.MasterKey.resolve(tmp_path / "absent.key", {})


def test_master_key_repr_hides_the_key() -> None:
    assert MASTER_HEX.lower() not in repr(MASTER).lower()
    assert MASTER.kcv in repr(MASTER)
