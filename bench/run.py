"""``make bench``: run every benchmark module in bench/ and print its figures.

Each module offers ``run() -> dict[str, float]``. Figures are ratios against a ceiling
measured in the same run (wire time, raw cipher, bare gRPC stream), never absolute
pass/fail thresholds; the goals from the issues are printed beside them.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import sys
import time
from pathlib import Path

import bench

# Helper modules of the benchmarks, not benchmarks themselves.
HELPERS = {"run", "balancer"}


def modules() -> list[str]:
    here = Path(bench.__file__).parent
    return sorted(m.name for m in pkgutil.iter_modules([str(here)]) if m.name not in HELPERS)


def main(argv: list[str]) -> int:
    wanted = argv or modules()
    results: dict[str, dict[str, float]] = {}
    failed = 0
    for name in wanted:
        module = importlib.import_module(f"bench.{name}")
        print(f"== {name}: {(module.__doc__ or '').strip().splitlines()[0]}", flush=True)
        started = time.monotonic()
        try:
            figures = module.run()
        except Exception as exc:  # one broken benchmark must not hide the others
            print(f"   FAILED: {type(exc).__name__}: {exc}")
            failed += 1
            continue
        results[name] = figures
        for key, value in figures.items():
            print(f"   {key:40} {value:14.4f}")
        print(f"   ({time.monotonic() - started:.1f} s)", flush=True)
    out = Path("var/bench/results.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"results written to {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
