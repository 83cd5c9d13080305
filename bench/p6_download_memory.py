"""P6: archiving a 100 MB asset raises the worker's peak RSS by less than 10 MB.

Two completed videos at the simulator, imported into a throwaway SQLite file. A fresh child
process (the "worker") sets Django up and archives the first one while the simulator pads
nothing, so every import and code path is warm; it reads its own VmHWM (peak RSS), tells the
simulator to pad videos with a 100 MiB `free` box (`pad_video_mb`, fixed per video at its
first download), archives the second one with `archive_assets`, and reads VmHWM
again. The difference is what one 100 MB download costs in memory.

    .venv/bin/python bench/p6_download_memory.py
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script

from bench._harness import (  # noqa: E402 (the line above makes `bench` importable)
    API_KEY,
    DUMMY_TASKS,
    PERF_KEY_ENV,
    PY,
    ROOT,
    SimulatorClient,
    Workspace,
    goal,
    http_get,
    import_video,
    make_provider,
    proc_status_kb,
)

PAD_MB = 100


def child(warm_pk: int, big_pk: int, sim_root: str) -> None:
    """The measured worker: one small archive to warm up, then the padded one."""
    import os

    import django

    django.setup()
    from django.conf import settings

    from jobs.archive import archive_assets
    from jobs.models import Video

    pid = os.getpid()
    archive_assets(Video.objects.select_related("provider").get(pk=warm_pk))
    before = proc_status_kb(pid, "VmHWM")
    SimulatorClient(sim_root).configure(pad_video_mb=PAD_MB)
    started = time.monotonic()
    archive_assets(Video.objects.select_related("provider").get(pk=big_pk))
    seconds = time.monotonic() - started
    after = proc_status_kb(pid, "VmHWM")
    video = Video.objects.get(pk=big_pk)
    size = (Path(settings.MEDIA_ROOT) / str(video.video_file.name)).stat().st_size
    print(
        json.dumps(
            {
                "before_kb": before,
                "after_kb": after,
                "bytes": size,
                "seconds": seconds,
                "asset_state": video.asset_state,
            }
        )
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.parse_args()
    with Workspace("p6") as ws:
        sim = ws.simulator("--speed", "1", "--pad-video-mb", "0")
        env = ws.django(tasks_backend=DUMMY_TASKS, api_key_env=PERF_KEY_ENV)
        provider = make_provider(sim.base_url, name="Simulator", api_key_env=PERF_KEY_ENV)
        seeded = sim.seed(2, varied=True)
        warm, big = (import_video(provider, item["id"]) for item in seeded)
        # Generate the media in the simulator first (it encodes on first request), so the
        # worker's timed download is the transfer itself; the pad is added when it is served.
        for item in seeded:
            http_get(
                f"{sim.base_url}/videos/{item['id']}/content?variant=thumbnail",
                {"Authorization": f"Bearer {API_KEY}"},
            )
        result = subprocess.run(
            [PY, __file__, "--child", str(warm.pk), str(big.pk), sim.root],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=150,
        )
        if result.returncode != 0:
            print(result.stdout, result.stderr)
            raise RuntimeError("the worker process failed")
        figures = json.loads(result.stdout.strip().splitlines()[-1])
        growth = (figures["after_kb"] - figures["before_kb"]) / 1024
        size_mb = figures["bytes"] / 1_048_576
        print(
            f"archived a {size_mb:.1f} MiB video in {figures['seconds']:.1f} s "
            f"({size_mb / figures['seconds']:.0f} MiB/s), asset_state={figures['asset_state']}"
        )
        print(
            f"worker peak RSS: {figures['before_kb'] / 1024:.1f} MB before, "
            f"{figures['after_kb'] / 1024:.1f} MB after (growth {growth:+.1f} MB)"
        )
        return goal(
            f"P6 rss_growth={growth:.1f}MB for {size_mb:.0f}MiB goal: rss_growth<10MB",
            growth < 10 and size_mb >= PAD_MB and figures["asset_state"] == "archived",
        )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
    else:
        sys.exit(main())
