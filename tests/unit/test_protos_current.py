"""The committed generated protobuf code equals a fresh regeneration (``make protos``)."""

from __future__ import annotations

from pathlib import Path

from branchline.common.protogen import PROTO_PACKAGE, PROTO_ROOT, generate, proto_sources


def test_generated_code_is_current(tmp_path: Path) -> None:
    fresh = generate(tmp_path)
    committed_dir = PROTO_ROOT / PROTO_PACKAGE
    assert fresh, "protoc produced nothing"
    names = {p.name for p in fresh}
    committed = {p.name for p in committed_dir.iterdir() if "_pb2" in p.name}
    assert names == committed, f"run `make protos`: files differ {names ^ committed}"
    for path in fresh:
        assert path.read_bytes() == (committed_dir / path.name).read_bytes(), (
            f"{path.name} is stale: run `make protos` and commit the result"
        )


def test_every_proto_has_generated_code() -> None:
    for source in proto_sources():
        stem = source.stem
        assert (source.parent / f"{stem}_pb2.py").exists(), stem
