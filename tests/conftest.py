"""The order the suite's modules run in: the slowest first.

``make test`` runs ``--dist loadfile --no-loadscope-reorder``: xdist hands whole modules to its
two workers in collection order (xdist's default reorder sorts them by test count, which put
the longest module, a few dozen tests, near the end and left one worker running it alone).
With the long modules first, the short ones fill in at the end and both workers finish
together. The list is measured (docs/operations.md, "Test suite time"); a module missing from
it runs after these, in collection order. ``tests/unit/test_suite_order.py`` checks every
entry still names a module.
"""

from __future__ import annotations

import pytest

# Longest first (module wall time on one worker, setup included).
SLOWEST_FIRST = (
    "tests/integration/test_cheque_sale.py",
    "tests/integration/test_tube_crash.py",
)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    rank = {path: index for index, path in enumerate(SLOWEST_FIRST)}

    def key(item: pytest.Item) -> int:
        return rank.get(item.path.relative_to(config.rootpath).as_posix(), len(rank))

    # A stable sort: the tests of a module keep their order (some build on the one before).
    items.sort(key=key)
