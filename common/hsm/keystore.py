"""The soft HSM's keystore: one JSON file whose key records are sealed with AES-256-GCM.

File layout (every value except the header is inside the ciphertext)::

    {"format": "branchline-hsm-keystore", "version": 1, "cipher": "AES-256-GCM",
     "master_kcv": "<AES-CMAC KCV of the master key>", "nonce": "<b64>",
     "ciphertext": "<b64: ciphertext || 16-byte tag>"}

The header is the GCM associated data, so changing any byte of the file makes the tag
fail: the keystore is then refused as tampered. The master key comes from
``BRANCHLINE_HSM_MASTER_KEY`` (64 hex digits) or a key file readable by its owner only;
it is never stored with the keystore or in the database. Writes go to a temporary file in
the same folder, are fsynced and renamed over the old file (then the folder is fsynced),
under an advisory lock so two custodians cannot lose each other's change.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import json
import os
import secrets
import stat
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from Crypto.Cipher import AES

from branchline.common.paycrypto import aes_kcv

from . import keys as keyrules
from .errors import (
    KeystoreError,
    KeystoreMissingError,
    KeystoreTamperedError,
    MasterKeyError,
    MasterKeyMismatchError,
)
from .interface import Algorithm, KeyInfo, KeyType

FORMAT = "branchline-hsm-keystore"
VERSION = 1
CIPHER = "AES-256-GCM"
MASTER_KEY_ENV = "BRANCHLINE_HSM_MASTER_KEY"
KEYSTORE_ENV = "BRANCHLINE_HSM_KEYSTORE"
DEFAULT_KEYSTORE = Path("var/hsm/keystore.json")
_NONCE = 12
_TAG = 16


class MasterKey:
    """The 256-bit key that seals the keystore. Its repr never shows the key."""

    def __init__(self, value: bytes) -> None:
        if len(value) != 32:
            raise MasterKeyError(f"master key must be 32 bytes (64 hex digits), got {len(value)}")
        self._value = bytes(value)

    def __repr__(self) -> str:
        return f"MasterKey(kcv={self.kcv})"

    @property
    def value(self) -> bytes:
        return self._value

    @property
    def kcv(self) -> str:
        return aes_kcv(self._value).hex().upper()

    @classmethod
    def generate(cls) -> MasterKey:
        return cls(secrets.token_bytes(32))

    @classmethod
    def from_hex(cls, text: str, source: str) -> MasterKey:
        compact = "".join(text.split())
        try:
            value = bytes.fromhex(compact)
        except ValueError:
            raise MasterKeyError(f"{source}: master key must be 64 hex digits") from None
        if len(value) != 32:
            raise MasterKeyError(f"{source}: master key must be 64 hex digits, got {len(compact)}")
        return cls(value)

    @classmethod
    def from_file(cls, path: Path) -> MasterKey:
        """A file holding 64 hex digits (or 32 raw bytes), mode 0600 or stricter."""
        try:
            info = path.stat()
            data = path.read_bytes()
        except OSError as exc:
            raise MasterKeyError(f"master key file {path}: {exc.strerror or exc}") from None
        if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise MasterKeyError(
                f"master key file {path} is accessible to group or others "
                f"(mode {stat.S_IMODE(info.st_mode):04o}); chmod 600 it"
            )
        if len(data) == 32:
            return cls(data)
        try:
            text = data.decode("ascii")
        except UnicodeDecodeError:
            raise MasterKeyError(f"master key file {path}: expected 64 hex digits") from None
        return cls.from_hex(text, f"master key file {path}")

    @classmethod
    def resolve(cls, key_file: Path | None, env: Mapping[str, str] | None = None) -> MasterKey:
        """The key file when given, else ``BRANCHLINE_HSM_MASTER_KEY``."""
        if key_file is not None:
            return cls.from_file(key_file)
        text = (os.environ if env is None else env).get(MASTER_KEY_ENV)
        if not text:
            raise MasterKeyError(
                f"no master key: set {MASTER_KEY_ENV} (64 hex digits) or give a master key "
                "file (mode 0600)"
            )
        return cls.from_hex(text, MASTER_KEY_ENV)


def write_master_key_file(path: Path, key: MasterKey) -> None:
    """Create a new master key file, mode 0600; refuses to overwrite one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise MasterKeyError(f"master key file {path} already exists; not overwriting it") from None
    with os.fdopen(fd, "w") as out:
        out.write(key.value.hex().upper() + "\n")
        out.flush()
        os.fsync(out.fileno())


@dataclass(frozen=True)
class StoredKey:
    info: KeyInfo
    value: bytes = field(repr=False)


def _header(master_kcv: str) -> dict[str, Any]:
    return {"format": FORMAT, "version": VERSION, "cipher": CIPHER, "master_kcv": master_kcv}


def _aad(header: Mapping[str, Any]) -> bytes:
    return json.dumps(dict(header), sort_keys=True, separators=(",", ":")).encode()


def seal(records: Mapping[str, StoredKey], master: MasterKey) -> bytes:
    """Serialise and encrypt ``records`` into the file's bytes."""
    payload = {
        "keys": [
            {
                "name": r.info.name,
                "type": r.info.type.value,
                "algorithm": r.info.algorithm.value,
                "value": r.value.hex().upper(),
                "kcv": r.info.kcv,
                "created_at": r.info.created_at.isoformat() if r.info.created_at else None,
            }
            for r in sorted(records.values(), key=lambda r: r.info.name)
        ]
    }
    header = _header(master.kcv)
    nonce = secrets.token_bytes(_NONCE)
    cipher = AES.new(master.value, AES.MODE_GCM, nonce=nonce, mac_len=_TAG)
    cipher.update(_aad(header))
    ciphertext, tag = cipher.encrypt_and_digest(json.dumps(payload).encode())
    document = {
        **header,
        "nonce": base64.b64encode(nonce).decode(),
        "ciphertext": base64.b64encode(ciphertext + tag).decode(),
    }
    return (json.dumps(document, indent=2) + "\n").encode()


def _b64(document: Mapping[str, Any], name: str, where: Path) -> bytes:
    value = document.get(name)
    try:
        if not isinstance(value, str):
            raise ValueError
        return base64.b64decode(value, validate=True)
    except (ValueError, binascii.Error):
        raise KeystoreTamperedError(f"keystore {where}: field {name!r} is not base64") from None


def unseal(data: bytes, master: MasterKey, where: Path) -> dict[str, StoredKey]:
    """Decrypt and validate a keystore file's bytes; raise on any inconsistency."""
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise KeystoreTamperedError(
            f"keystore {where} is not valid JSON: corrupted or not a keystore"
        ) from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise KeystoreError(f"{where} is not a Branchline HSM keystore")
    if document.get("version") != VERSION or document.get("cipher") != CIPHER:
        raise KeystoreError(
            f"keystore {where}: unsupported version {document.get('version')!r} / cipher "
            f"{document.get('cipher')!r} (expected {VERSION} / {CIPHER})"
        )
    stored_kcv = document.get("master_kcv")
    if stored_kcv != master.kcv:
        raise MasterKeyMismatchError(
            f"the master key (KCV {master.kcv}) is not the one that sealed keystore {where} "
            f"(KCV {stored_kcv})"
        )
    nonce = _b64(document, "nonce", where)
    sealed = _b64(document, "ciphertext", where)
    if len(nonce) != _NONCE or len(sealed) < _TAG:
        raise KeystoreTamperedError(f"keystore {where}: nonce or ciphertext has the wrong length")
    cipher = AES.new(master.value, AES.MODE_GCM, nonce=nonce, mac_len=_TAG)
    cipher.update(_aad(_header(stored_kcv)))
    try:
        plain = cipher.decrypt_and_verify(sealed[:-_TAG], sealed[-_TAG:])
    except ValueError:
        raise KeystoreTamperedError(
            f"keystore {where} failed its integrity check: it was corrupted or tampered with; "
            "restore it from a backup"
        ) from None
    return _records(plain, where)


def _records(plain: bytes, where: Path) -> dict[str, StoredKey]:
    # Authenticated, so a failure here is a bug or a foreign writer: still say so clearly.
    try:
        entries = json.loads(plain)["keys"]
        records: dict[str, StoredKey] = {}
        for entry in entries:
            algorithm = Algorithm(entry["algorithm"])
            value = bytes.fromhex(entry["value"])
            created = entry.get("created_at")
            info = KeyInfo(
                name=str(entry["name"]),
                type=KeyType(entry["type"]),
                algorithm=algorithm,
                kcv=str(entry["kcv"]),
                created_at=datetime.fromisoformat(created) if created else None,
            )
            if keyrules.kcv_of(algorithm, value) != info.kcv:
                raise ValueError(f"key {info.name!r} does not match its KCV")
            records[info.name] = StoredKey(info, value)
    except (KeyError, TypeError, ValueError) as exc:
        reason = str(exc) if "KCV" in str(exc) else "malformed key records"
        raise KeystoreTamperedError(f"keystore {where}: {reason}") from None
    return records


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a crash leaves either the old or the new file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


class KeyStore:
    """Read side cached (reloaded when the file changes), write side locked and atomic.

    Thread-safe: the server calls it from worker threads.
    """

    def __init__(self, path: Path, master: MasterKey) -> None:
        self.path = path
        self.master = master
        self._lock = threading.Lock()
        self._signature: tuple[int, int, int] | None = None
        self._records: dict[str, StoredKey] = {}

    def exists(self) -> bool:
        return self.path.exists()

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            info = self.path.stat()
        except FileNotFoundError:
            return None
        return (info.st_ino, info.st_mtime_ns, info.st_size)

    def _read(self) -> dict[str, StoredKey]:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            raise KeystoreMissingError(
                f"no keystore at {self.path}: create a key with branchline-hsm create-key"
            ) from None
        except OSError as exc:
            raise KeystoreError(f"keystore {self.path}: {exc.strerror or exc}") from None
        return unseal(data, self.master, self.path)

    def records(self) -> dict[str, StoredKey]:
        """The current keys; re-read when the file was replaced since the last read."""
        with self._lock:
            signature = self._stat()
            if signature is None:
                raise KeystoreMissingError(
                    f"no keystore at {self.path}: create a key with branchline-hsm create-key"
                )
            if signature != self._signature:
                self._records = self._read()
                self._signature = signature
            return self._records

    @contextlib.contextmanager
    def _file_lock(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.path.with_name(self.path.name + ".lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def update(self, change: Callable[[dict[str, StoredKey]], None]) -> None:
        """Apply ``change`` to a fresh copy of the records and write them back atomically.

        A missing file starts empty (the first key creates the keystore); ``change`` may
        raise to abort without writing anything.
        """
        with self._lock, self._file_lock():
            records = dict(self._read()) if self.path.exists() else {}
            change(records)
            atomic_write(self.path, seal(records, self.master))
            self._records = records
            self._signature = self._stat()
