"""The content-addressed file store: ``<root>/sha256/ab/cd/<hash>``, uploads in progress in
``<root>/uploads/<upload id>.part``.

An upload's resume offset is the length of its part file: every piece is fsynced before it
is acknowledged, so after a crash or restart the file holds exactly what was acknowledged
(a torn tail of an unacknowledged piece is cut back to the offset the caller resends from).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from branchline.common.errors import FailedPrecondition

READ_BLOCK = 1024 * 1024


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class ContentStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "uploads").mkdir(parents=True, exist_ok=True)
        (root / "sha256").mkdir(parents=True, exist_ok=True)

    def path_of(self, sha256: str) -> Path:
        return self.root / "sha256" / sha256[:2] / sha256[2:4] / sha256

    def part_of(self, upload_id: str) -> Path:
        return self.root / "uploads" / f"{upload_id}.part"

    def has(self, sha256: str) -> bool:
        return self.path_of(sha256).is_file()

    def offset(self, upload_id: str) -> int:
        try:
            return self.part_of(upload_id).stat().st_size
        except FileNotFoundError:
            return 0

    def append(self, upload_id: str, offset: int, data: bytes) -> int:
        """Write ``data`` at ``offset`` (which must be the bytes held, or inside them after a
        torn write); durable on return; the new length."""
        path = self.part_of(upload_id)
        held = self.offset(upload_id)
        if offset > held:
            raise FailedPrecondition(
                f"offset: the server holds {held} bytes of this upload, not {offset}; "
                "resume from the held offset",
                field="offset",
                reason="offset_mismatch",
                metadata={"held": str(held)},
            )
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o640)
        try:
            os.ftruncate(fd, offset)
            os.lseek(fd, offset, os.SEEK_SET)
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        return offset + len(data)

    def digest_part(self, upload_id: str) -> str:
        return file_sha256(self.part_of(upload_id))

    def place(self, source: Path, sha256: str) -> Path:
        """Move a complete file into its content address (durably)."""
        target = self.path_of(sha256)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, target)
        _fsync_dir(target.parent)
        return target

    def drop_part(self, upload_id: str) -> None:
        self.part_of(upload_id).unlink(missing_ok=True)

    def delete(self, sha256: str) -> bool:
        path = self.path_of(sha256)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        _fsync_dir(path.parent)
        return True


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(READ_BLOCK):
            digest.update(block)
    return digest.hexdigest()
