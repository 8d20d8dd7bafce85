"""Branchline's command-line tools run in the test's own process.

Each tool's ``main(argv)`` is what its console script calls; running it here skips a Python
start-up and the imports of the server (seconds per call on a busy machine: the set-up of
the tube, PIN and dispatch tests was mostly that). The processes under test — server, agent,
simulator, watchers — stay real processes.
"""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence

# stdout, stderr and stdin are the process's: one tool at a time.
_ONE_AT_A_TIME = threading.Lock()


def run_main(
    main: Callable[[list[str]], int], args: Sequence[str], stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """``main(args)`` with its output captured, as ``subprocess.run(..., text=True)`` gives it
    (an argparse refusal's ``SystemExit`` is its exit code)."""
    out, err = io.StringIO(), io.StringIO()
    with _ONE_AT_A_TIME:
        saved = sys.stdin
        sys.stdin = io.StringIO(stdin or "")
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    code = main(list(args))
                except SystemExit as exc:
                    code = exc.code if isinstance(exc.code, int) else 1
        finally:
            sys.stdin = saved
    return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())


def in_process(main: Callable[[list[str]], int], args: list[str], stdin: str | None = None) -> str:
    """Run a Branchline CLI's ``main`` in this process; it must succeed. Returns its stdout."""
    result = run_main(main, args, stdin)
    assert result.returncode == 0, f"{args[:4]}: {result.stdout}{result.stderr}"
    return result.stdout
