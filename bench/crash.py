"""Crash recovery: SIGKILL the tracker mid-submit, mid-refresh and mid-download, restart it.

    .venv/bin/python bench/crash.py --jobs 20

One `manage.py track_videos` at a time runs against a file database (SQLite, or a fresh
database on the PostgreSQL server in DATABASE_URL). It is killed with SIGKILL (no clean-up
code runs) three times:

1. mid-submit: the provider has created the job but the answer never arrives
   (`accept_then_timeout`), so the outcome is unknown when the process dies;
2. mid-refresh: a status read hangs (`timeout` fault) when the process dies;
3. mid-download: a large asset (`pad_video_mb`) is half written to MEDIA_ROOT/.partial.

Each restart waits out TRACKER_LEASE_SECONDS (short here, as a supervisor's restart delay
would), so the dead worker's leases lapse and its temporary files count as stale. In between, a
second unknown-outcome submit happens to a live tracker, which must reconcile it by itself.

Verdict (last line; exit status 0 only if all hold): every job settled and agreeing with the
provider, no duplicate provider job (jobs_created == local submitted), archived rows point at
whole files, no `.partial/*.part` left after the restarted tracker's start-up clean-up.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script

from bench._harness import (  # noqa: E402 (the line above makes `bench` importable)
    DUMMY_TASKS,
    Simulator,
    Stack,
    add_stack_options,
    log,
    reliability_stack,
    wait_until,
)
from bench._verdict import (  # noqa: E402
    assess,
    partial_files,
    repeated_transitions,
    wait_for_settled,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--jobs", type=int, default=20, help="remixes to submit")
    p.add_argument("--speed", type=float, default=4, help="simulator speed (4: a clip in 5 s)")
    p.add_argument("--pad-mb", type=float, default=200, help="padding for the download phase")
    p.add_argument("--lease", type=int, default=3, help="TRACKER_LEASE_SECONDS")
    p.add_argument("--threads", type=int, default=4, help="tracker threads")
    p.add_argument("--deadline", type=float, default=120, help="seconds to wait at the end")
    add_stack_options(p)
    return p.parse_args(argv)


class Tracker:
    """One `track_videos` process at a time, numbered for its log file."""

    def __init__(self, stack: Stack) -> None:
        self.stack, self.runs = stack, 0
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.runs += 1
        self.proc = self.stack.worker("track_videos", log=self.log_name())

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)  # no handler, no finally: a power cut
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None:
            self.stack.ws.stop(self.proc)

    def log_name(self) -> str:
        return f"tracker-{self.runs}.log"

    def log_text(self) -> str:
        return (self.stack.ws.dir / self.log_name()).read_text(errors="replace")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    with reliability_stack(
        "crash",
        args,
        ["--speed", str(args.speed), "--hang-seconds", "30"],
        tasks_backend=DUMMY_TASKS,
        TRACKER_LEASE_SECONDS=str(args.lease),
        TRACKER_THREADS=str(args.threads),
        # Long enough that a hung request is still hanging when the process is killed.
        PROVIDER_TIMEOUT_SECONDS="5",
        POLL_MIN_SECONDS="0.25",
        POLL_MAX_SECONDS="4",
    ) as stack:
        result = run(args, stack, Tracker(stack))
    result["seconds"] = f"{time.monotonic() - started:.0f}"
    for problem in result.pop("problems"):
        log(f"problem: {problem}")
    ok = result.pop("ok")
    print("crash " + " ".join(f"{k}={v}" for k, v in result.items()), flush=True)
    return 0 if ok else 1


def run(args: argparse.Namespace, stack: Stack, tracker: Tracker) -> dict[str, Any]:
    from jobs.models import Video
    from jobs.services.submit import submit_remix

    sim = stack.sim
    provider, sources, user = stack.fixtures(2)
    prompts = {uuid.uuid4(): f"crash {n:03d}" for n in range(args.jobs)}
    for n, (key, prompt) in enumerate(prompts.items()):
        submit_remix(user=user, source=sources[n % len(sources)], prompt=prompt, key=key)
    problems: list[str] = []
    restart_gap = args.lease + 0.5  # leases lapse and the dead worker's files are stale

    # 1. mid-submit: the provider creates the job, the answer is lost, the worker dies.
    sim.script_faults("accept_then_timeout", method="POST", path="/remix")
    tracker.start()
    if not wait_until(lambda: fault_count(sim, "accept_then_timeout") >= 1, 30):
        problems.append("the tracker never sent a submission")
    time.sleep(0.3)  # the provider has stored the job by now; its answer is 30 s away
    tracker.kill()
    log("killed the tracker mid-submit (outcome unknown)")
    time.sleep(restart_gap)

    # 2. mid-refresh, with another unknown-outcome submit for the live tracker to reconcile.
    sim.script_faults("accept_then_timeout", method="POST", path="/remix")
    tracker.start()
    running = wait_for_row(
        lambda: Video.objects.filter(
            idempotency_key__in=list(prompts),
            submission=Video.Submission.SUBMITTED,
            status__in=Video.ACTIVE,
        ).first(),
        30,
    )
    if running is None:
        problems.append("no job reached the provider after the first restart")
    else:
        before = fault_count(sim, "timeout")
        sim.script_faults("timeout", method="GET", path=f"/v1/videos/{running.video_id}")
        if not wait_until(lambda: fault_count(sim, "timeout") > before, 30):
            problems.append("the tracker never refreshed the job")
        tracker.kill()
        log(f"killed the tracker mid-refresh of #{running.pk}")
    time.sleep(restart_gap)

    # 3. mid-download: big assets from now on, kill while one is half written.
    sim.configure(pad_video_mb=args.pad_mb)
    tracker.start()
    if not wait_until(lambda: any(size > 0 for size in partial_sizes()), 60, 0.005):
        problems.append("never caught a download in progress")
    tracker.kill()
    half_written = safe_partials()
    log(f"killed the tracker mid-download ({len(half_written)} partial file(s))")
    for row in Video.objects.filter(idempotency_key__in=list(prompts), asset_state="archived"):
        if not row.video_file or not Path(row.video_file.path).is_file():
            problems.append(f"#{row.pk} marked archived without its file after the kill")
    time.sleep(restart_gap)

    # 4. restart for good: start-up clean-up, then everything must finish.
    tracker.start()
    cleaned = wait_until(lambda: not safe_partials() or "removed" in tracker.log_text(), 10)
    removed_line = next((ln for ln in tracker.log_text().splitlines() if "removed" in ln), "")
    left = wait_for_settled(list(prompts), time.monotonic() + args.deadline, label="crash")
    tracker.stop()
    leftovers = safe_partials()

    outcome = assess(sim, provider, prompts)
    problems += outcome.problems
    repeats = repeated_transitions(list(prompts))
    if half_written and not cleaned:
        problems.append("the restarted tracker did not remove the dead one's partial files")
    ok = (
        outcome.clean
        and not leftovers
        and not repeats
        and not left
        and not problems
        and outcome.jobs_created == outcome.submitted
    )
    return {
        "jobs": args.jobs,
        "kills": 3,
        "lost": outcome.lost,
        "duplicated": outcome.duplicated,
        "stuck": outcome.stuck,
        "final": outcome.final,
        "archived": outcome.archived,
        "bad_archives": outcome.bad_archives,
        "half_written_at_kill": len(half_written),
        "removed_at_startup": removed_count(removed_line),
        "partial_left": len(leftovers),
        "jobs_created": outcome.jobs_created,
        "local_submitted": outcome.submitted,
        "repeated_transitions": repeats,
        "problems": problems,
        "ok": ok,
    }


def fault_count(sim: Simulator, kind: str) -> int:
    return int(sim.stats()["faults"].get(kind, 0))


def wait_for_row(query: Any, timeout: float) -> Any:
    from django.db import close_old_connections

    found: list[Any] = []

    def check() -> bool:
        close_old_connections()
        row = query()
        if row is not None:
            found.append(row)
        return row is not None

    wait_until(check, timeout, 0.05)
    return found[0] if found else None


def partial_sizes() -> list[int]:
    sizes = []
    for path in partial_files():
        try:
            sizes.append(path.stat().st_size)
        except FileNotFoundError:  # finished and renamed into place meanwhile
            pass
    return sizes


def safe_partials() -> list[Path]:
    return [path for path in partial_files() if path.exists()]


def removed_count(line: str) -> int:
    words = line.split()
    return int(words[1]) if len(words) > 1 and words[0] == "removed" and words[1].isdigit() else 0


if __name__ == "__main__":
    sys.exit(main())
