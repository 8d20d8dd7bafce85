from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.stack import Stack


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    # Unix socket paths are limited to 107 bytes: keep the root short.
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="bl-", dir="/tmp"))
    s = Stack(root)
    s.init_pki()
    try:
        yield s
    finally:
        s.stop_all()
        for proc in s.procs.values():
            (tmp_path / proc.log_path.name).write_text(proc.log())
        import shutil

        shutil.rmtree(root, ignore_errors=True)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)
