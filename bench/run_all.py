"""Run every benchmark in bench/, one after another, and summarise their last lines.

    .venv/bin/python bench/run_all.py              # everything (what `make bench` runs)
    .venv/bin/python bench/run_all.py p1 p3 soak   # only scripts whose names start so

The performance scripts (p1_…p6_…) run first, in order, then the other scripts in bench/
(e.g. soak.py, crash.py, concurrency.py) alphabetically; files starting with "_" are helpers,
and fault_proxy.py is the soak's tool, not a bench.
Each script's output is shown as it runs. Every script ends with its verdict line and exits
non-zero when its goal is missed; this runner exits non-zero if any script did. A script that
overruns --timeout is stopped with its whole process group (it was started in its own).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
# Programs in bench/ that are not benchmarks: this runner, and the soak's fault proxy.
TOOLS = frozenset({"run_all.py", "fault_proxy.py"})


def scripts(prefixes: list[str]) -> list[Path]:
    found = [p for p in BENCH.glob("*.py") if not p.name.startswith("_") and p.name not in TOOLS]
    perf = sorted(p for p in found if p.name[:1] == "p" and p.name[1:2].isdigit())
    others = sorted(p for p in found if p not in perf)
    ordered = perf + others
    if prefixes:
        ordered = [p for p in ordered if any(p.stem.startswith(x) for x in prefixes)]
    return ordered


def run(script: Path, timeout: float) -> tuple[int, float, str]:
    """Stream one script's output; returns (exit status, seconds, last non-empty line)."""
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, str(script)],
        cwd=BENCH.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        start_new_session=True,  # its own process group, so a timeout stops its children too
    )
    # A timer, not a check between lines: a script that hangs silently must be stopped too.
    timer = threading.Timer(timeout, _stop_group, [proc])
    timer.start()
    last = ""
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            print(line, end="", flush=True)
            if line.strip():
                last = line.strip()
        status = proc.wait()
    except KeyboardInterrupt:
        _stop_group(proc)
        raise
    finally:
        timer.cancel()
    seconds = time.monotonic() - started
    if seconds >= timeout:
        last, status = f"stopped after {timeout:.0f} s (--timeout); last line: {last}", 124
    return status, seconds, last


def _stop_group(proc: subprocess.Popen[str]) -> None:
    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("only", nargs="*", help="run only scripts whose names start so")
    parser.add_argument(
        "--timeout", type=float, default=900, help="seconds per script (default 900)"
    )
    args = parser.parse_args()
    todo = scripts(args.only)
    if not todo:
        print("no benchmark scripts matched", file=sys.stderr)
        return 2
    results: list[tuple[str, int, float, str]] = []
    for script in todo:
        print(f"\n=== {script.name} ===", flush=True)
        status, seconds, last = run(script, args.timeout)
        results.append((script.name, status, seconds, last))
    print("\n=== summary ===")
    for name, status, seconds, last in results:
        verdict = "ok" if status == 0 else f"exit {status}"
        print(f"{name:26} {verdict:8} {seconds:6.0f} s  {last}")
    return 0 if all(status == 0 for _, status, _, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
