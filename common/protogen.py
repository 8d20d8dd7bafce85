"""Regenerate the committed protobuf/gRPC code: ``make protos`` (``python -m branchline.common.protogen``).

Sources live in ``protos/branchline/v1/*.proto``; the generated ``*_pb2.py``, ``*_pb2_grpc.py``
and ``*_pb2.pyi`` are written beside them so that ``branchline.v1`` imports them. A test runs
``generate`` into a temporary folder and fails when the committed files differ.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"
PROTO_PACKAGE = Path("branchline") / "v1"


def proto_sources() -> list[Path]:
    return sorted((PROTO_ROOT / PROTO_PACKAGE).glob("*.proto"))


def generate(out_dir: Path) -> list[Path]:
    """Run protoc for every source into ``out_dir`` (mirroring branchline/v1); return the files."""
    import grpc_tools
    from grpc_tools import protoc

    well_known = Path(grpc_tools.__file__).parent / "_proto"
    sources = [str(p.relative_to(PROTO_ROOT)) for p in proto_sources()]
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"-I{well_known}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *sources,
    ]
    code = protoc.main(args)
    if code != 0:
        raise RuntimeError(f"protoc failed with exit code {code}")
    return sorted(p for p in (out_dir / PROTO_PACKAGE).iterdir() if "_pb2" in p.name)


def main() -> int:
    files = generate(PROTO_ROOT)
    for f in files:
        print(f.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
