"""P2: status reads per completed job by the tracker, against a naive 2 s polling loop.

One simulator at speed 1 (a 4 s clip renders in ~20 s) and three groups of 10 jobs started
together, so all three see the same machine load:

- naive: 10 threads in this process, each `create` then `retrieve` every 2 s until the job is
  final (the loop the SDK's `create_and_poll` runs with a 2 s interval). The simulator's render
  times are exact multiples of 5 s, so a loop started at creation would always land 0.2 s
  after completion; real render times are not that tidy, so thread k starts its 2 s grid
  k x 0.2 s late, spreading completion evenly over the interval (fair staleness figures);
- polling: 10 jobs submitted through `submit_create` to a provider without webhooks,
  worked by a real `manage.py track_videos` subprocess;
- webhooks: 10 jobs on a second provider with webhooks on; the simulator signs
  `video.completed` with a whsec_ secret and posts it to `manage.py runserver`'s
  /webhooks/<pk>/, and the same tracker does the rest.

Status reads come from the simulator's own `/_sim/stats` per-video `retrieve` counts.
Staleness is the time from the simulator's exact completion time (its store keeps
`created + duration` as a float; the API's `completed_at` is whole seconds) to the moment
the local side knew: the naive loop's answer, or the tracker's `StatusChange` row.

    .venv/bin/python bench/p2_provider_load.py
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script

from bench._harness import (  # noqa: E402 (the line above makes `bench` importable)
    API_KEY,
    DUMMY_TASKS,
    PERF_KEY_ENV,
    Workspace,
    goal,
    median,
    percentile,
    polling_and_webhooks,
    submit_creates,
)

JOBS = 10
NAIVE_INTERVAL = 2.0
DEADLINE = 100.0  # seconds for all 30 jobs to be noticed; a 4 s clip takes ~20 s
SCENE = "a lighthouse in fog"


def naive_job(base_url: str, index: int, out: dict[str, float]) -> None:
    """create, then retrieve every 2 s until final: what a script with the SDK would do."""
    from jobs.provider.client import ProviderClient

    client = ProviderClient(base_url, API_KEY, timeout=(5, 30), max_retries=2)
    video = client.create(
        prompt=f"naive {index}: {SCENE}",
        model="sora-2",
        seconds="4",
        size="720x1280",
        idempotency_key=str(uuid.uuid4()),
    )
    time.sleep(index * NAIVE_INTERVAL / JOBS)  # phase of the 2 s grid: see the docstring
    while True:
        video = client.retrieve(video.id)
        if video.is_terminal:
            out[video.id] = time.time()
            return
        time.sleep(NAIVE_INTERVAL)


def noticed(pks: list[int]) -> dict[str, float]:
    """provider video id -> when the tracker recorded the job as completed (unix seconds)."""
    from jobs.models import StatusChange

    rows = StatusChange.objects.filter(video_id__in=pks, to_status="completed").values_list(
        "video__video_id", "at"
    )
    return {str(vid): at.timestamp() for vid, at in rows}


def report(
    name: str, seen: dict[str, float], done: dict[str, float], stats: dict[str, Any]
) -> tuple[float, float, float]:
    """Print one group's figures; returns (reads per job, median staleness, p95 staleness)."""
    reads = [stats["per_video"].get(vid, {}).get("retrieve", 0) for vid in seen]
    contents = [stats["per_video"].get(vid, {}).get("content", 0) for vid in seen]
    late = [seen[vid] - done[vid] for vid in seen]
    per_job = sum(reads) / len(reads) if reads else float("nan")
    print(
        f"{name:9} jobs={len(seen):2} status reads/job={per_job:5.2f} "
        f"(min {min(reads, default=0)}, max {max(reads, default=0)}) "
        f"content GETs/job={sum(contents) / max(len(contents), 1):.1f} "
        f"staleness median={median(late):.2f}s p95={percentile(late, 95):.2f}s "
        f"max={max(late, default=float('nan')):.2f}s"
    )
    return per_job, median(late), percentile(late, 95)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.parse_args()
    with Workspace("p2") as ws:
        setup = polling_and_webhooks(
            ws,
            "--speed",
            "1",
            tasks_backend=DUMMY_TASKS,  # the tracker does it all
            api_key_env=PERF_KEY_ENV,
        )
        sim, env, user = setup.sim, setup.env, setup.user
        polling, hooked = setup.polling, setup.hooked
        tracker = ws.tracker(env)
        time.sleep(2)  # let the tracker import Django before the clock starts

        naive_done: dict[str, float] = {}
        threads = [
            threading.Thread(target=naive_job, args=(sim.base_url, i, naive_done), daemon=True)
            for i in range(JOBS)
        ]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        poll_pks = submit_creates(user, polling, "polling", SCENE, JOBS)
        hook_pks = submit_creates(user, hooked, "webhook", SCENE, JOBS)

        deadline = started + DEADLINE
        while time.monotonic() < deadline:
            if tracker.poll() is not None:
                print(ws.tail("tracker.log"))
                raise RuntimeError("the tracker exited")
            if (
                len(naive_done) == JOBS
                and len(noticed(poll_pks)) == JOBS
                and len(noticed(hook_pks)) == JOBS
            ):
                break
            time.sleep(0.5)
        time.sleep(1)  # a read in flight at the last check still counts
        stats = sim.stats()
        done = sim.completion_times()
        print(
            f"{JOBS} jobs per group, 4 s clips at simulator speed 1, "
            f"all noticed after {time.monotonic() - started:.0f} s"
        )
        naive_reads, naive_med, naive_p95 = report("naive 2s", naive_done, done, stats)
        poll_reads, poll_med, poll_p95 = report("polling", noticed(poll_pks), done, stats)
        hook_reads, hook_med, hook_p95 = report("webhooks", noticed(hook_pks), done, stats)
        print(f"webhook deliveries: {stats['webhooks']}")
        ratio = poll_reads / naive_reads
        complete = all(
            len(group) == JOBS for group in (naive_done, noticed(poll_pks), noticed(hook_pks))
        )
        met = complete and ratio <= 0.5 and poll_med <= naive_med and hook_reads <= 1.0
        return goal(
            f"P2 reads_ratio={ratio:.2f} staleness_median={poll_med:.2f}s "
            f"(naive {naive_med:.2f}s) webhook_reads/job={hook_reads:.2f} "
            "goal: ratio<=0.5 staleness<=naive webhook_reads<=1",
            met,
        )


if __name__ == "__main__":
    sys.exit(main())
