"""Concurrent workers: two trackers and the task worker over the same jobs, none done twice.

    DATABASE_URL=postgres://root@127.0.0.1:5432/test .venv/bin/python bench/concurrency.py \
        --jobs 300 --baseline

Two `manage.py track_videos` processes and one `manage.py db_worker` (django-tasks-db: every
submit and every completion also queues a task) race for the same rows. Claims are leases
taken with SELECT … FOR UPDATE SKIP LOCKED on PostgreSQL (the point of this bench; SQLite
serialises claimers and is accepted too). The provider injects no faults, so its request
counts are exact evidence:

- every job was sent exactly once: remix POSTs == jobs_created == jobs;
- every completed job was archived exactly once: 3 content downloads each, none for failed;
- no two StatusChange rows record the same transition of the same video;
- status reads per job compared with a single tracker and no worker (`--baseline`).

The last line is the verdict; the exit status is 0 only if every check holds.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script

from bench._harness import (  # noqa: E402 (the line above makes `bench` importable)
    DB_TASKS,
    PY,
    Simulator,
    add_stack_options,
    exit_cleanly_on_sigterm,
    is_postgres,
    log,
    reliability_stack,
)
from bench._verdict import (  # noqa: E402
    assess,
    repeated_transitions,
    wait_for_settled,
)

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from jobs.models import Video


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--jobs", type=int, default=300, help="remixes to submit")
    p.add_argument("--trackers", type=int, default=2, help="track_videos processes")
    p.add_argument("--workers", type=int, default=1, help="db_worker processes")
    p.add_argument("--threads", type=int, default=4, help="threads per tracker")
    p.add_argument("--speed", type=float, default=10, help="simulator speed (10: a clip in 2 s)")
    p.add_argument("--fail-rate", type=float, default=0.2, help="jobs the provider fails")
    p.add_argument("--deadline", type=float, default=600, help="seconds to wait for the workers")
    p.add_argument("--baseline", action="store_true", help="also run 1 tracker, no worker")
    add_stack_options(p)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    exit_cleanly_on_sigterm()  # the baseline run below is stopped too
    baseline = run_baseline(args) if args.baseline else None
    started = time.monotonic()
    if not is_postgres(args.database_url):
        log("note: SQLite serialises claimers; PostgreSQL (DATABASE_URL) is the real test")
    sim_args = ["--speed", str(args.speed), "--fail-rate", str(args.fail_rate)]
    sim_args += ["--expires-after", str(3600 * args.speed)]
    with reliability_stack(
        "concurrency",
        args,
        sim_args,
        tasks_backend=DB_TASKS,
        TRACKER_THREADS=str(args.threads),
        POLL_MIN_SECONDS="0.25",
        POLL_MAX_SECONDS="4",
    ) as stack:
        sim = stack.sim
        provider, sources, user = stack.fixtures(4)
        before = sim.stats()
        procs = stack.trackers(args.trackers)
        worker = ["db_worker", "--interval", "0.2", "--no-startup-delay", "--no-reload"]
        procs += [stack.worker(*worker, log=f"worker-{n}.log") for n in range(args.workers)]
        log(
            f"concurrency: {args.jobs} remixes, {args.trackers} tracker(s) x {args.threads} "
            f"threads + {args.workers} task worker(s), db {stack.database_url.split(':')[0]}"
        )
        prompts = submit_all(user, sources, args.jobs)
        left = wait_for_settled(list(prompts), time.monotonic() + args.deadline, "concurrency")
        for proc in procs:
            stack.ws.stop(proc)
        stats = sim.stats()  # before assess(), whose size checks download again
        keys = list(prompts)
        result = measure(sim, provider, prompts, before, stats)
        result["repeated_transitions"] = repeated_transitions(keys)
    problems = result.pop("problems")
    for problem in problems[:20]:
        log(f"problem: {problem}")
    ok = (
        not problems
        and not left
        and result["lost"] == result["duplicated"] == result["stuck"] == 0
        and result["final"] == args.jobs
        and result["remix_posts"] == result["jobs_created"] == args.jobs
        and result["double_downloads"] == 0
        and result["repeated_transitions"] == 0
    )
    tail = f" baseline_retrieves_per_job={baseline:.2f}" if baseline is not None else ""
    print(
        f"concurrency jobs={args.jobs} trackers={args.trackers} workers={args.workers} "
        + " ".join(f"{k}={v}" for k, v in result.items())
        + f"{tail} seconds={time.monotonic() - started:.0f}",
        flush=True,
    )
    return 0 if ok else 1


def submit_all(user: Any, sources: list[Any], jobs: int) -> dict[uuid.UUID, str]:
    actions = [(uuid.uuid4(), f"concurrency {n:05d}") for n in range(jobs)]
    submit_remixes(user, sources, actions, range(jobs))
    return dict(actions)


def measure(
    sim: Simulator, provider: Any, prompts: dict[uuid.UUID, str], before: dict[str, Any], stats: Any
) -> dict[str, Any]:
    from jobs.models import Video

    rows = list(Video.objects.filter(idempotency_key__in=list(prompts)))
    per_video = stats["per_video"]
    problems: list[str] = []
    double = 0
    for video in rows:
        downloads = per_video.get(video.video_id or "", {}).get("content", 0)
        expected = 3 if video.status == Video.Status.COMPLETED else 0
        if downloads != expected:
            double += downloads > expected
            problems.append(f"#{video.pk} {video.status}: {downloads} downloads, not {expected}")
    retrieves = sum(per_video.get(v.video_id or "", {}).get("retrieve", 0) for v in rows)
    route = "POST /v1/videos/{id}/remix"
    remix_posts = stats["requests"].get(route, 0) - before["requests"].get(route, 0)
    outcome = assess(sim, provider, prompts)
    problems += outcome.problems
    return {
        "lost": outcome.lost,
        "duplicated": outcome.duplicated,
        "stuck": outcome.stuck,
        "final": outcome.final,
        "completed": outcome.completed,
        "failed": outcome.failed,
        "jobs_created": stats["jobs_created"] - before["jobs_created"],
        "remix_posts": remix_posts,
        "double_downloads": double,
        "retrieves_per_job": f"{retrieves / max(len(rows), 1):.2f}",
        "problems": problems,
    }


def run_baseline(args: argparse.Namespace) -> float | None:
    """The same jobs with one tracker and no task worker: nothing can overlap there."""
    cmd = [PY, str(Path(__file__).resolve()), "--jobs", str(args.jobs), "--trackers", "1"]
    cmd += ["--workers", "0", "--threads", str(args.threads), "--speed", str(args.speed)]
    cmd += ["--fail-rate", str(args.fail_rate), "--deadline", str(args.deadline)]
    if args.database_url:
        cmd += ["--database-url", args.database_url]
    log("baseline: 1 tracker, no task worker")
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=args.deadline + 120)
    last = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    log(f"baseline: {last}")
    fields = dict(part.split("=", 1) for part in last.split()[1:] if "=" in part)
    return float(fields["retrieves_per_job"]) if "retrieves_per_job" in fields else None


def submit_remixes(
    user: User, sources: list[Video], actions: list[tuple[uuid.UUID, str]], order: Iterable[int]
) -> None:
    """Press Remix for `actions[i]` (its key and prompt), for each i in `order`, from four
    "browsers" at once; action i remixes sources[i % len(sources)]."""
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection

    from jobs.services.submit import submit_remix

    def press(index: int) -> None:
        key, prompt = actions[index]
        try:
            submit_remix(user=user, source=sources[index % len(sources)], prompt=prompt, key=key)
        finally:
            connection.close()  # pool threads each hold a connection

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(press, order))


if __name__ == "__main__":
    sys.exit(main())
