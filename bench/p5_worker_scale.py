"""P5 / G3: one tracker keeps 1,000 in-flight jobs on schedule behind a provider that takes
300 ms to answer, at a few ms of CPU per status read, with flat memory and no stalls.

A simulator at speed 1 holds long jobs (12 s clips, every job "slow" x30: ~30 minutes), so
they stay in flight for the whole run; the simulator asks pollers to come back every 10 s
(`openai-poll-after-ms`), which the tracker honours, and answers every API call after
LATENCY (0.3 s, `--latency`: a provider far away). Local rows are bulk-created with their
first refresh spread over 10 s, i.e. a steady ~100 status reads per second for 1,000 jobs:
with 300 ms each, about 30 in flight at any moment, where the old fixed 8 threads made 25
reads a second. The tracker runs with its default settings.

1. schedule: a real `manage.py track_videos` subprocess runs for STEADY seconds. This
   process samples every row's `next_poll_at` and `last_polled_at` four times a second; each
   refresh's lateness is `last_polled_at` minus the `next_poll_at` it was due at (it
   includes the 300 ms GET itself), and its interval ratio is the time since the previous
   refresh over the interval that was asked for (goal: within 1.3x, for every refresh).
   The CPU per status read is the tracker's own CPU time (/proc/<pid>/stat) over the
   steady window divided by the simulator's count of status reads in it.
2. one slow answer: the simulator is told to stall the next GET of one job for HANG seconds
   (a scripted `timeout` fault; the client waits up to PROVIDER_TIMEOUT_SECONDS). The figure
   is how many other jobs were refreshed during the stall, against the steady rate.
3. memory: VmHWM (peak RSS) of that tracker, then of a fresh tracker run with 5,000 in-flight
   jobs (more than one tracker can refresh every 10 s, so it is busy throughout); the growth
   is the difference.

    .venv/bin/python bench/p5_worker_scale.py
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
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
    make_provider,
    median,
    percentile,
    proc_status_kb,
)

SMALL, LARGE = 1_000, 5_000
SPREAD = 10.0  # first refreshes spread over the simulator's 10 s poll-after
START = 4.0  # the first refresh is due this long after the tracker starts (it imports Django)
SETTLE = 6.0  # seconds after the first spread before measuring
STEADY = 24.0  # seconds of steady state measured
LARGE_RUN = 24.0  # seconds the 5,000-job tracker runs before its peak RSS is read
HANG = 12.0  # the stalled GET
SAMPLE = 0.25  # seconds between samples of the rows
LATENCY = 0.3  # seconds the simulator takes to answer every API call
LEASE_FLOOR = 60.0  # a next_poll_at this far ahead is a lease (claimed), not a schedule


def create_remote(sim: Simulator, count: int) -> list[str]:
    """Jobs at the simulator: JSON creates on a few keep-alive sessions (cheaper than the
    client's multipart form, and only the setup, not what is measured)."""
    import threading

    import requests

    local = threading.local()

    def one(i: int) -> str:
        if not hasattr(local, "session"):
            local.session = requests.Session()
            local.session.trust_env = False  # 127.0.0.1 only, never a proxy
        response = local.session.post(
            f"{sim.base_url}/videos",
            json={
                "prompt": f"long job {i}",
                "model": "sora-2",
                "seconds": "12",
                "size": "720x1280",
            },
            headers={"Authorization": f"Bearer {API_KEY}"},
            timeout=30,
        )
        response.raise_for_status()
        return str(response.json()["id"])

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, range(count)))


def create_rows(provider: Any, video_ids: list[str]) -> list[int]:
    from django.utils import timezone

    from jobs.models import Video

    now = timezone.now()
    rng = random.Random(5)
    rows = [
        Video(
            provider=provider,
            video_id=video_id,
            model="sora-2",
            status="queued",
            prompt=f"long job {i}",
            size="720x1280",
            seconds="12",
            submission=Video.Submission.SUBMITTED,
            idempotency_key=uuid.uuid4(),
            next_poll_at=now + timedelta(seconds=START + rng.uniform(0, SPREAD)),
        )
        for i, video_id in enumerate(video_ids)
    ]
    return [v.pk for v in Video.objects.bulk_create(rows, batch_size=500)]


class Sampler:
    """Turns periodic snapshots of (next_poll_at, last_polled_at) into refresh events."""

    def __init__(self) -> None:
        self.scheduled: dict[int, datetime] = {}
        self.polled: dict[int, datetime | None] = {}
        # (pk, refreshed at, lateness s, interval taken / interval asked for)
        self.events: list[tuple[int, float, float, float]] = []

    def sample(self) -> None:
        from django.utils import timezone

        from jobs.models import Video

        now = timezone.now()
        rows = Video.objects.filter(status__in=Video.ACTIVE).values_list(
            "pk", "next_poll_at", "last_polled_at"
        )
        for pk, due, polled in rows:
            before = self.polled.get(pk, "unseen")
            if before != "unseen" and polled is not None and polled != before:
                due_at = self.scheduled.get(pk)
                if due_at is not None:
                    lateness = (polled - due_at).total_seconds()
                    ratio = float("nan")
                    if isinstance(before, datetime) and due_at > before:
                        ratio = (polled - before) / (due_at - before)
                    self.events.append((pk, polled.timestamp(), lateness, ratio))
            self.polled[pk] = polled
            if due is not None and (due - now).total_seconds() < LEASE_FLOOR:
                self.scheduled[pk] = due

    def run(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            started = time.monotonic()
            self.sample()
            time.sleep(max(0.0, SAMPLE - (time.monotonic() - started)))

    def between(self, start: float, end: float, exclude: int | None = None) -> list[float]:
        return [late for pk, at, late, _ in self.events if start <= at < end and pk != exclude]

    def ratios(self, start: float, end: float) -> list[float]:
        return [r for _, at, _, r in self.events if start <= at < end and r == r]  # not NaN


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc/<pid>/stat (clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def status_reads(sim: Simulator) -> int:
    return int(sim.stats()["requests"].get("GET /v1/videos/{id}", 0))


def hang_one(sim: Simulator) -> tuple[int, str, float]:
    """Script a stall for the job due next; returns (pk, video id, when the stall began)."""
    from django.utils import timezone

    from jobs.models import Video

    soon = timezone.now() + timedelta(seconds=1)
    video = (
        Video.objects.filter(next_poll_at__gt=soon, status__in=Video.ACTIVE)
        .order_by("next_poll_at")
        .first()
    )
    assert video is not None and video.video_id
    sim.configure(hang_seconds=HANG)
    sim.script_faults("timeout", count=1, method="GET", path=f"/v1/videos/{video.video_id}")
    return video.pk, video.video_id, time.time()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.parse_args()
    with Workspace("p5") as ws:
        sim = ws.simulator("--speed", "1")
        sim.configure(slow_rate=1, slow_factor=30)  # ~30 minutes per job: in flight throughout
        env = ws.django(tasks_backend=DUMMY_TASKS, api_key_env=PERF_KEY_ENV)
        provider = make_provider(sim.base_url, name="Simulator", api_key_env=PERF_KEY_ENV)

        t0 = time.monotonic()
        create_rows(provider, create_remote(sim, SMALL))
        print(f"{SMALL:,} in-flight jobs created in {time.monotonic() - t0:.1f} s")
        sim.configure(latency=LATENCY)  # from here on, every answer takes 300 ms
        sampler = Sampler()
        sampler.sample()
        tracker = ws.tracker(env, log="tracker-1000.log")
        sampler.run(START + SPREAD + SETTLE)
        cpu_before, reads_before = cpu_seconds(tracker.pid), status_reads(sim)
        sampler.run(STEADY)
        cpu_used, reads = cpu_seconds(tracker.pid) - cpu_before, status_reads(sim) - reads_before
        steady_end = time.time()
        if tracker.poll() is not None:
            print(ws.tail("tracker-1000.log"))
            raise RuntimeError("the tracker exited")
        # Refreshes made after the first spread had passed and the tracker had settled.
        steady = sampler.between(steady_end - STEADY, steady_end)
        ratios = sampler.ratios(steady_end - STEADY, steady_end)
        rate = len(steady) / STEADY
        cpu_ms = 1000 * cpu_used / max(reads, 1)
        sizing = [
            line for line in ws.tail("tracker-1000.log", 50).splitlines() if "at once" in line
        ]
        print(
            f"steady, answers after {LATENCY * 1000:.0f} ms: {len(steady)} refreshes in "
            f"{STEADY:.0f} s ({rate:.0f}/s), lateness median {median(steady):.2f} s, "
            f"p95 {percentile(steady, 95):.2f} s, max {max(steady, default=float('nan')):.2f} s"
        )
        print(
            f"interval taken / asked for: median {median(ratios):.2f}, p95 "
            f"{percentile(ratios, 95):.2f}, max {max(ratios, default=float('nan')):.2f}; "
            f"tracker CPU {cpu_used:.1f} s for {reads} status reads = {cpu_ms:.2f} ms each"
        )
        print(f"tracker: {sizing[-1] if sizing else 'no sizing line in its log'}")

        hung_pk, hung_id, scripted = hang_one(sim)
        began = None
        deadline = time.monotonic() + SPREAD + 5
        while time.monotonic() < deadline:
            sampler.sample()
            if began is None and not sim.pending_faults():
                began = time.time()  # the stalled GET has arrived at the simulator
                deadline = time.monotonic() + HANG + 2
            time.sleep(SAMPLE)
        assert began is not None, "the stalled GET never came"
        during = sampler.between(began + 1, began + HANG - 1, exclude=hung_pk)
        hang_rate = len(during) / (HANG - 2)
        print(
            f"one GET stalled {HANG:.0f} s: {len(during)} other refreshes during it "
            f"({hang_rate:.0f}/s against {rate:.0f}/s steady), lateness p95 "
            f"{percentile(during, 95):.2f} s"
        )
        rss_small = proc_status_kb(tracker.pid, "VmHWM")
        ws.stop(tracker)

        sim.configure(latency=0)  # the set-up is not what is measured
        t0 = time.monotonic()
        create_rows(provider, create_remote(sim, LARGE - SMALL))
        print(f"{LARGE - SMALL:,} more jobs created in {time.monotonic() - t0:.1f} s")
        sim.configure(latency=LATENCY)
        big = ws.tracker(env, log="tracker-5000.log")
        time.sleep(LARGE_RUN)
        if big.poll() is not None:
            print(ws.tail("tracker-5000.log"))
            raise RuntimeError("the tracker exited")
        rss_large = proc_status_kb(big.pid, "VmHWM")
        ws.stop(big)
        growth = (rss_large - rss_small) / 1024
        print(
            f"tracker peak RSS: {rss_small / 1024:.1f} MB with {SMALL:,} jobs, "
            f"{rss_large / 1024:.1f} MB with {LARGE:,} (growth {growth:+.1f} MB)"
        )
        worst = max(ratios, default=float("inf"))
        keeps_going = hang_rate >= 0.5 * rate
        return goal(
            f"P5 interval_ratio_max={worst:.2f} cpu_per_read={cpu_ms:.2f}ms "
            f"lateness_p95={percentile(steady, 95):.2f}s rss_growth={growth:.1f}MB "
            f"refreshes_during_stall={hang_rate:.0f}/s (steady {rate:.0f}/s) "
            "goal: ratio<=1.3 cpu<=4ms rss_growth<10MB stall_rate>=50%_of_steady",
            worst <= 1.3 and cpu_ms <= 4 and growth < 10 and keeps_going,
        )


if __name__ == "__main__":
    sys.exit(main())
