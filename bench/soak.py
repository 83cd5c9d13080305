"""Fault soak: N remixes through a provider that fails ~30 % of requests; nothing may be lost.

    .venv/bin/python bench/soak.py --jobs 500 --fault-rate 0.3

Starts its own simulator (every fault kind: 429 with Retry-After, 500/502/503, timeouts, dropped
connections, malformed JSON, accepted-then-dropped and accepted-then-stalled creates; plus jobs
that fail or run slowly) and a throwaway database (SQLite, or a fresh database on the
PostgreSQL server named by DATABASE_URL). Every remix is a separate user action with its own
idempotency key, and ~10 % are submitted again with the same key (double clicks, some at the
same instant, some after the job was already sent). `manage.py track_videos` subprocesses do
the work. The last line is the verdict:

    soak jobs=500 faults=0.30 lost=0 duplicated=0 stuck=0 final=500 completed=… failed=… seconds=…

The exit status is 0 only when nothing was lost, duplicated or stuck.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script

from bench._harness import (  # noqa: E402 (the line above makes `bench` importable)
    DUMMY_TASKS,
    Outcome,
    add_stack_options,
    assess,
    log,
    partial_files,
    reliability_stack,
    submit_remixes,
    wait_for_settled,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--jobs", type=int, default=500, help="user actions (remixes) to submit")
    p.add_argument("--fault-rate", type=float, default=0.3, help="share of API requests faulted")
    p.add_argument("--speed", type=float, default=40, help="simulator speed (40: a clip in 0.5 s)")
    p.add_argument("--threads", type=int, default=8, help="threads per tracker process")
    p.add_argument("--trackers", type=int, default=1, help="track_videos processes")
    p.add_argument("--sources", type=int, default=5, help="completed videos to remix")
    p.add_argument("--double-clicks", type=float, default=0.1, help="share submitted twice")
    p.add_argument("--fail-rate", type=float, default=0.1, help="jobs the provider fails")
    p.add_argument("--slow-rate", type=float, default=0.1, help="jobs 4x slower than usual")
    p.add_argument("--hang-seconds", type=float, default=2, help="how long a timeout fault hangs")
    p.add_argument("--client-timeout", type=float, default=1, help="PROVIDER_TIMEOUT_SECONDS")
    # The simulator compresses time by --speed; the tracker's polling and back-off are scaled
    # down too, or a 0.5 s job would wait out intervals meant for minute-long renders.
    p.add_argument("--poll-min", type=float, default=0.25, help="POLL_MIN_SECONDS")
    p.add_argument("--poll-max", type=float, default=8, help="POLL_MAX_SECONDS")
    p.add_argument("--deadline", type=float, default=900, help="seconds to wait for the workers")
    p.add_argument("--seed", type=int, default=None, help="random seed for the double clicks")
    add_stack_options(p)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rng = random.Random(args.seed)
    started = time.monotonic()
    sim_args = [
        "--speed",
        str(args.speed),
        "--hang-seconds",
        str(args.hang_seconds),
        # Assets live an hour of wall-clock time, as at OpenAI, whatever the speed.
        "--expires-after",
        str(3600 * args.speed),
        "--fail-rate",
        str(args.fail_rate),
        "--slow-rate",
        str(args.slow_rate),
    ]
    with reliability_stack(
        "soak",
        args,
        sim_args,
        tasks_backend=DUMMY_TASKS,
        PROVIDER_TIMEOUT_SECONDS=str(args.client_timeout),
        TRACKER_THREADS=str(args.threads),
        POLL_MIN_SECONDS=str(args.poll_min),
        POLL_MAX_SECONDS=str(args.poll_max),
    ) as stack:
        sim = stack.sim
        provider, sources, user = stack.fixtures(args.sources)
        # Faults from here on: the set-up above is the operator's, not under test.
        sim.configure(fault_rate=args.fault_rate, faults="all")
        trackers = stack.trackers(args.trackers)
        log(
            f"soak: {args.jobs} remixes, fault rate {args.fault_rate:.2f}, "
            f"{args.trackers} tracker(s) x {args.threads} threads, "
            f"db {stack.database_url.split(':')[0]}"
        )
        prompts = submit_all(user, sources, args.jobs, args.double_clicks, rng)
        left = wait_for_settled(list(prompts), time.monotonic() + args.deadline, label="soak")
        for proc in trackers:
            stack.ws.stop(proc)
        sim.configure(fault_rate=0)  # the verdict reads the provider without faults
        outcome = assess(sim, provider, prompts)
        stats = sim.stats()
        leftovers = partial_files()
    report(args, outcome, stats, left, leftovers, time.monotonic() - started)
    return 0 if outcome.clean and not leftovers else 1


def submit_all(
    user: Any, sources: list[Any], jobs: int, double_clicks: float, rng: random.Random
) -> dict[uuid.UUID, str]:
    """Each action is one user pressing Remix: its own key and prompt. Some press twice."""
    actions = [(uuid.uuid4(), f"soak {n:05d}: {rng.choice(ADJECTIVES)} take") for n in range(jobs)]
    again = set(rng.sample(range(jobs), int(jobs * double_clicks)))
    # Four "browsers" at once; a double click is the same form posted twice at the same time.
    order = list(range(jobs)) + [i for i in sorted(again) if i % 2 == 0]
    rng.shuffle(order)
    submit_remixes(user, sources, actions, order)
    # The other half come back later (a reload re-posts the form) when the job may already
    # be at the provider: the same key must find the same row and send nothing.
    submit_remixes(user, sources, actions, [i for i in sorted(again) if i % 2 == 1])
    return dict(actions)


ADJECTIVES = ["sepia", "noir", "neon", "watercolour", "claymation", "slow-motion", "8-bit"]


def report(
    args: argparse.Namespace,
    outcome: Outcome,
    stats: dict[str, Any],
    left: int,
    leftovers: list[Path],
    seconds: float,
) -> None:
    for problem in outcome.problems[:20]:
        log(f"problem: {problem}")
    faults = ", ".join(f"{k}={v}" for k, v in sorted(stats["faults"].items()))
    total, faulted = stats["total_requests"], stats["faults_injected"]
    log(f"provider: {total} requests, {faulted} faulted ({faults})")
    log(
        f"provider jobs created {outcome.jobs_created}, local submitted {outcome.submitted}; "
        f"archived {outcome.archived}, bad archives {outcome.bad_archives}, "
        f"partial files left {len(leftovers)}, unsettled at deadline {left}"
    )
    print(
        f"soak jobs={args.jobs} faults={args.fault_rate:.2f} lost={outcome.lost} "
        f"duplicated={outcome.duplicated} stuck={outcome.stuck} final={outcome.final} "
        f"completed={outcome.completed} failed={outcome.failed} seconds={seconds:.0f}",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
