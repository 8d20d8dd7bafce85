"""The order the suite's modules run in: the slowest first.

``make test`` runs ``--dist loadfile --no-loadscope-reorder``: xdist hands whole modules to its
two workers in collection order. xdist's default re-sorts them by test count: the cheque
crash module (17 tests, the longest) went out about 35th of 171, and the browser and
integration modules of one to six tests, each starting a whole branch, behind some 80 modules;
one worker then ran long modules alone at the end. With the long modules first, the short
ones fill in at the end and both workers finish together. How the list was ranked is in docs/operations.md, "Test suite time"; a module
missing from it runs after these, in collection order. ``tests/unit/test_suite_order.py``
checks every entry still names a module.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

# Longest first: module wall time on one worker, its stacks' start-up included (the crash
# enumerations, then modules that start a stack per test or a browser on a whole branch).
SLOWEST_FIRST = (
    "tests/integration/test_tube_crash.py",
    "tests/browser/test_kiosk_session.py",
    "tests/browser/test_phone_jobs.py",
    "tests/integration/test_tube.py",
    "tests/browser/test_recordings_pages.py",
    "tests/browser/test_kiosk_cheque.py",
    "tests/integration/test_cheque_sale.py",
    "tests/browser/test_call_media.py",
    "tests/integration/test_demo.py",
    "tests/browser/test_kiosk_tube.py",
    "tests/integration/test_foundation.py",
    "tests/integration/test_dispatch.py",
    "tests/browser/test_assistant.py",
    "tests/browser/test_console_backoffice.py",
    "tests/browser/test_console_staff.py",
    "tests/integration/test_phone_job_abandon.py",
    "tests/integration/test_tube_partition.py",
    "tests/integration/test_calls.py",
    "tests/integration/test_tube_station.py",
    "tests/integration/test_replicas.py",
    "tests/integration/test_cheque_printer.py",
    "tests/unit/test_bench_tube_ingest_smoke.py",
    "tests/unit/test_dispatch_concurrency.py",
    "tests/integration/test_pin_verification.py",
    "tests/unit/test_cheques_serials.py",
    "tests/unit/test_cheques_rules.py",
    "tests/integration/test_cheque_printer_ippeve.py",
    "tests/unit/test_server_storage.py",
    "tests/integration/test_metrics.py",
    "tests/unit/test_tube_service.py",
    "tests/browser/test_phone_pairing.py",
    "tests/browser/test_phone_job_abandoned.py",
    "tests/integration/test_recordings.py",
    "tests/browser/test_console_cheques.py",
    "tests/integration/test_pin_pad.py",
    "tests/unit/test_mobile_gateway_fuzz.py",
)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    rank = {path: index for index, path in enumerate(SLOWEST_FIRST)}

    def key(item: pytest.Item) -> int:
        return rank.get(item.path.relative_to(config.rootpath).as_posix(), len(rank))

    # A stable sort: the tests of a module keep their order (some build on the one before).
    items.sort(key=key)


@pytest.fixture(autouse=True)
def _root_logger_restored() -> Iterator[None]:
    """Each test leaves the root logger as it found it. A test that runs a command's ``main``
    (``setup_logging``) points the root logger at the stderr pytest captured for that test;
    left so, every later test in the worker that logs (alembic's INFO on a migration) writes
    to a closed stream, and Python prints "--- Logging error ---" into that test's stderr."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
