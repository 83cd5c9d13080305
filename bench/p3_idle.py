"""P3: an idle tab costs nothing, and an unchanged poll tick costs under 1 KB on the wire.

`manage.py runserver` on a throwaway SQLite file and headless Debian Chromium (Playwright):

1. idle: the table holds only finished jobs. After the page has loaded, every request the
   tab makes in the next 60 s is counted (the goal is none: no polling without active jobs).
2. unchanged tick: 25 jobs are made "in progress" and left alone (no tracker runs, so nothing
   changes), and the page is opened again. The browser then polls the table every
   TABLE_POLL_SECONDS; the size of each answer on the wire (status line and headers plus the
   body bytes actually sent, from Chromium's own network accounting) is recorded. The first
   tick brings the whole table; the figure is the median of the later ones (304s: the page
   sends its version as If-None-Match, static/js/app.js). The same is checked without a
   browser: a GET with the ETag of the previous answer must get a 304.
3. the server's CPU for a 304 (not only its bytes): the CPU time of the runserver process
   (/proc/<pid>/stat) over 300 conditional GETs, per request, beside the same for the whole
   partial. (bench/g1_polls.py measures it under gunicorn at 100,000 rows on PostgreSQL.)

    .venv/bin/python bench/p3_idle.py
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script

from bench._harness import (  # noqa: E402 (the line above makes `bench` importable)
    DUMMY_TASKS,
    PERF_KEY_ENV,
    Workspace,
    chromium_page,
    goal,
    http_get,
    median,
    session_cookie,
)
from bench.g1_polls import cpu_seconds  # noqa: E402

IDLE_SECONDS = 60
TICKS = 6  # unchanged poll ticks to record after the first


def make_videos(user: Any, provider: Any, count: int) -> None:
    from django.utils import timezone

    from jobs.models import Video

    now = timezone.now()
    Video.objects.bulk_create(
        Video(
            provider=provider,
            owner=user,
            video_id=f"video_{uuid.uuid4().hex}",
            model="sora-2",
            status="completed",
            progress=100,
            prompt=f"job {i}: a paper boat on a rainy street",
            size="720x1280",
            seconds="4",
            submission=Video.Submission.SUBMITTED,
            asset_state=Video.Assets.ARCHIVED,
            video_file=f"archive/{i}/video.mp4",
            created_at=now - timedelta(hours=1, seconds=i),
            requested_at=now - timedelta(hours=1, seconds=i),
        )
        for i in range(count)
    )


def cpu_per_request(pid: int, send: Any, count: int = 300) -> float:
    """Milliseconds of the server process's CPU per request, over `count` requests."""
    before = cpu_seconds(pid)
    for _ in range(count):
        send()
    return 1000 * (cpu_seconds(pid) - before) / count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.parse_args()
    with Workspace("p3") as ws:
        env = ws.django(tasks_backend=DUMMY_TASKS, api_key_env=PERF_KEY_ENV)
        from django.conf import settings
        from django.contrib.auth import get_user_model

        from jobs.models import Provider, Video

        user = get_user_model().objects.create_user("alice", password=None)
        provider = Provider.objects.create(
            name="Sim", base_url="http://127.0.0.1:9/v1", api_key_env="SIMULATOR_API_KEY"
        )
        make_videos(user, provider, 30)
        server, web = ws.web(env)
        cookie = session_cookie(user)

        with chromium_page(cookie, web) as page:
            # 1. idle tab ---------------------------------------------------------------
            requests: list[tuple[float, str, str]] = []
            page.on("request", lambda r: requests.append((time.monotonic(), r.method, r.url)))
            page.goto(f"{web}/", wait_until="networkidle")
            assert page.locator("#video-table").count() == 1, "not logged in?"
            page.wait_for_timeout(2_000)  # let anything the page does at load settle
            start = time.monotonic()
            page.wait_for_timeout(IDLE_SECONDS * 1000)
            idle = [r for r in requests if r[0] >= start]
            print(
                f"idle tab: {len(requests) - len(idle)} requests while loading, "
                f"{len(idle)} in the next {IDLE_SECONDS} s"
            )
            for _, method, url in idle[:10]:
                print(f"  {method} {url}")

            # 2. an unchanged in-progress table --------------------------------------------
            recent = Video.objects.order_by("-requested_at").values_list("pk", flat=True)[:25]
            Video.objects.filter(pk__in=list(recent)).update(
                status="in_progress", progress=40, asset_state=Video.Assets.PENDING
            )
            polls: list[Any] = []
            page.on(
                "requestfinished",
                lambda r: polls.append(r) if "hx-request" in r.headers else None,
            )
            page.goto(f"{web}/", wait_until="networkidle")
            deadline = time.monotonic() + (TICKS + 3) * settings.TABLE_POLL_SECONDS + 10
            while len(polls) < TICKS + 1 and time.monotonic() < deadline:
                page.wait_for_timeout(250)
            wire: list[int] = []
            for n, request in enumerate(polls[: TICKS + 1]):
                sizes = request.sizes()
                response = request.response()
                on_wire = sizes["responseHeadersSize"] + sizes["responseBodySize"]
                print(
                    f"  tick {n}: HTTP {response.status if response else '?'}, "
                    f"headers {sizes['responseHeadersSize']} B + body "
                    f"{sizes['responseBodySize']} B on the wire"
                )
                if n > 0:
                    wire.append(on_wire)

        # The same without a browser: full answer, then a conditional GET with its ETag.
        headers = {"HX-Request": "true", "Cookie": f"sessionid={cookie}"}
        status, first_headers, body = http_get(f"{web}/?page=1", headers)
        etag = first_headers.get("ETag", "")
        print(
            f"partial: HTTP {status}, {len(body):,} B body, ETag {etag or 'none'}, "
            f"Cache-Control {first_headers.get('Cache-Control', 'none')!r}, "
            f"Vary {first_headers.get('Vary', 'none')!r}"
        )
        again = "none"
        if etag:
            status2, headers2, body2 = http_get(
                f"{web}/?page=1", {**headers, "If-None-Match": etag}
            )
            again = f"HTTP {status2}, {len(body2)} B body"
            print(f"same GET with If-None-Match: {again}")
        conditional = {**headers, "If-None-Match": etag}
        cpu_304 = cpu_per_request(server.pid, lambda: http_get(f"{web}/?page=1", conditional))
        cpu_200 = cpu_per_request(server.pid, lambda: http_get(f"{web}/?page=1", headers))
        print(
            f"server CPU (runserver, SQLite): {cpu_304:.2f} ms per 304, "
            f"{cpu_200:.2f} ms per whole partial"
        )

        idle_per_min = len(idle) * 60 / IDLE_SECONDS
        unchanged = median(wire) if wire else float("nan")
        return goal(
            f"P3 idle_requests_per_min={idle_per_min:.0f} unchanged_tick_bytes={unchanged:.0f} "
            f"(full answer {len(body):,} B) cpu_per_304_ms={cpu_304:.2f} "
            f"(whole {cpu_200:.2f}) goal: idle=0 unchanged<=1024",
            idle_per_min == 0 and unchanged <= 1024,
        )


if __name__ == "__main__":
    sys.exit(main())
