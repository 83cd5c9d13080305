"""P2 / G4: status reads and staleness, the tracker against the official SDK's create_and_poll.

One simulator at speed 1 (a 4 s clip renders in ~20 s, an 8 s one in ~40 s, a 12 s one in
~60 s), render times varying by up to ±10 % (`--duration-jitter 0.1`: real ones are not
tidy multiples of the provider's poll-after hint, which is a round figure), and a quarter of
the jobs twice as slow. Three groups run side by side with the same jobs (JOBS each: the
same mix of 4, 8 and 12 s clips, the same ones slow), so all three see the same machine load:

- sdk: the official `openai` SDK (PyPI, the `bench` extra), `client.videos.create_and_poll`
  in a thread per job, pointed at the simulator's base URL with its key. It reads every
  `openai-poll-after-ms` (a twentieth of the render time) until the job is final;
- polling: the same jobs submitted through `submit_create` to a provider without webhooks,
  worked by a real `manage.py track_videos` subprocess with its default settings;
- webhooks: the same jobs on a second provider with webhooks on; the simulator signs
  `video.completed` with a whsec_ secret and posts it to `manage.py runserver`'s
  /webhooks/<pk>/, and the same tracker does the rest.

The slow jobs are made slow by switching the simulator's `slow_rate` to 1 while they are
created (all three groups' at once) and back to 0 for the rest. Status reads come from the
simulator's own `/_sim/stats` per-video `retrieve` counts. Staleness is the time from the
simulator's exact completion time (its store keeps `created + duration` as a float; the
API's `completed_at` is whole seconds) to the moment the local side knew: the SDK call's
return, or the tracker's `StatusChange` row in the database.

    .venv/bin/python bench/p2_provider_load.py
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script

from bench._harness import (  # noqa: E402 (the line above makes `bench` importable)
    API_KEY,
    DUMMY_TASKS,
    PERF_KEY_ENV,
    Simulator,
    Workspace,
    goal,
    median,
    percentile,
    polling_and_webhooks,
    wait_until,
)

LENGTHS = ("4", "8", "12")
PER_LENGTH = 8  # jobs of each length per group
SLOW_PER_LENGTH = 2  # of which this many are twice as slow
JOBS = PER_LENGTH * len(LENGTHS)
DEADLINE = 170.0  # seconds for every job to be noticed; the slowest takes ~135 s
SCENE = "a lighthouse in fog"


def sdk_job(base_url: str, seconds: str, label: str, out: dict[str, float]) -> None:
    """What a script with the SDK does: create, then poll until final (one call)."""
    from openai import DefaultHttpxClient, OpenAI

    # The SDK's own HTTP client and defaults; trust_env=False: 127.0.0.1, never a proxy.
    http = DefaultHttpxClient(trust_env=False)
    client = OpenAI(base_url=base_url, api_key=API_KEY, max_retries=2, http_client=http)
    with warnings.catch_warnings():  # the SDK marks the Videos methods deprecated
        warnings.simplefilter("ignore", DeprecationWarning)
        video = client.videos.create_and_poll(
            prompt=f"sdk {label}: {SCENE}",
            model="sora-2",
            seconds=seconds,  # type: ignore[arg-type]  # one of LENGTHS, the SDK's Literal
            size="720x1280",
        )
    out[video.id] = time.time()
    http.close()


def submit(user: Any, provider: Any, label: str, seconds: str) -> int:
    import uuid

    from jobs.services.submit import submit_create

    video = submit_create(
        user=user,
        provider=provider,
        prompt=f"{label}: {SCENE}",
        model="sora-2",
        size="720x1280",
        seconds=seconds,
        key=uuid.uuid4(),
    )
    return video.pk


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
    late = [seen[vid] - done[vid] for vid in seen if vid in done]
    per_job = sum(reads) / len(reads) if reads else float("nan")
    print(
        f"{name:9} jobs={len(seen):2} status reads/job={per_job:5.2f} "
        f"(min {min(reads, default=0)}, max {max(reads, default=0)}) "
        f"staleness median={median(late):.2f}s p95={percentile(late, 95):.2f}s "
        f"max={max(late, default=float('nan')):.2f}s"
    )
    return per_job, median(late), percentile(late, 95)


class Groups:
    """The three groups' jobs: SDK threads and their return times, the two providers' rows."""

    def __init__(self, setup: Any) -> None:
        self.setup = setup
        self.sdk_done: dict[str, float] = {}
        self.threads: list[threading.Thread] = []
        self.poll_pks: list[int] = []
        self.hook_pks: list[int] = []

    def start(self, seconds: str, label: str) -> None:
        thread = threading.Thread(
            target=sdk_job,
            args=(self.setup.sim.base_url, seconds, label, self.sdk_done),
            daemon=True,
        )
        thread.start()
        self.threads.append(thread)
        self.poll_pks.append(submit(self.setup.user, self.setup.polling, f"poll {label}", seconds))
        self.hook_pks.append(submit(self.setup.user, self.setup.hooked, f"hook {label}", seconds))

    def all_noticed(self) -> bool:
        return (
            len(self.sdk_done) == JOBS
            and len(noticed(self.poll_pks)) == JOBS
            and len(noticed(self.hook_pks)) == JOBS
        )


def created(sim: Simulator) -> int:
    return int(sim.stats()["jobs_created"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.parse_args()
    with Workspace("p2") as ws:
        setup = polling_and_webhooks(
            ws,
            "--speed",
            "1",
            "--duration-jitter",
            "0.1",
            "--slow-factor",
            "2",
            "--fps",
            "6",  # the simulator encodes every archived MP4 on these two cores: keep it cheap
            tasks_backend=DUMMY_TASKS,  # the tracker does it all
            api_key_env=PERF_KEY_ENV,
        )
        sim, env = setup.sim, setup.env
        tracker = ws.tracker(env)
        time.sleep(2)  # let the tracker import Django before the clock starts
        groups = Groups(setup)
        started = time.monotonic()
        # The slow ones first, all three groups' together, while every new job is slow.
        sim.configure(slow_rate=1)
        slow = [(s, n) for s in LENGTHS for n in range(SLOW_PER_LENGTH)]
        for seconds, n in slow:
            groups.start(seconds, f"{seconds}s slow {n}")
        if not wait_until(lambda: created(sim) >= 3 * len(slow), timeout=30):
            raise RuntimeError("the slow jobs were not all created within 30 s")
        sim.configure(slow_rate=0)
        for seconds in LENGTHS:
            for n in range(SLOW_PER_LENGTH, PER_LENGTH):
                groups.start(seconds, f"{seconds}s {n}")

        deadline = started + DEADLINE
        while time.monotonic() < deadline and not groups.all_noticed():
            if tracker.poll() is not None:
                print(ws.tail("tracker.log"))
                raise RuntimeError("the tracker exited")
            time.sleep(0.5)
        time.sleep(1)  # a read in flight at the last check still counts
        stats = sim.stats()
        done = sim.completion_times()
        print(
            f"{JOBS} jobs per group ({PER_LENGTH} each of {'/'.join(LENGTHS)} s clips, "
            f"{SLOW_PER_LENGTH} of each twice as slow), simulator speed 1, render times ±10 %; "
            f"all noticed after {time.monotonic() - started:.0f} s"
        )
        sdk_reads, sdk_med, sdk_p95 = report("sdk", groups.sdk_done, done, stats)
        poll_reads, poll_med, poll_p95 = report("polling", noticed(groups.poll_pks), done, stats)
        hook_reads, hook_med, hook_p95 = report("webhooks", noticed(groups.hook_pks), done, stats)
        print(f"webhook deliveries: {stats['webhooks']}")
        ratio = poll_reads / sdk_reads
        met = groups.all_noticed() and ratio <= 0.3 and poll_p95 <= sdk_p95 and hook_p95 <= 1.5
        return goal(
            f"P2 reads_ratio={ratio:.2f} staleness_p95={poll_p95:.2f}s (sdk {sdk_p95:.2f}s) "
            f"webhooks_p95={hook_p95:.2f}s webhook_reads/job={hook_reads:.2f} "
            "goal: ratio<=0.3 p95<=sdk webhooks_p95<=1.5s",
            met,
        )


if __name__ == "__main__":
    sys.exit(main())
