"""G1 (and the honest P3): what a poll costs the server at 100,000 videos on PostgreSQL.

gunicorn (gthread, DEBUG off; bench/_g1_wsgi.py adds a bench-only floor page) serves a
throwaway PostgreSQL database filled with 100,000 videos (one INSERT … SELECT over
generate_series), the newest 40 in flight, the rest finished, owned by 10 users.

The server's CPU is the CPU time of gunicorn's processes (utime + stime from /proc/<pid>/stat
of the master and its workers) over a run of requests, divided by their number; PostgreSQL's
own processes are not counted (the same database work stands behind every figure). Requests
are sent as htmx sends them (HX-Request, the session cookie, gzip accepted, If-None-Match with
the last ETag, as static/js/app.js does):

1. floor: `GET /bench/floor/`, the session and the user through every middleware, nothing else.
2. unchanged: the table's poll with its current ETag: a 304 decided before rendering.
3. changed: one row of the page changes (here, between two requests) and the poll brings it.
4. whole: the table's poll without a version (the whole partial), for scale; and its bytes.
5. 50 tabs: 10 users x 5 tabs (table, gallery, "mine", a status filter, a detail page), each
   polling every TABLE_POLL_SECONDS, while a stand-in tracker moves 5 running jobs every 2 s;
   the server's CPU over the run as a fraction of one core.

Goals: unchanged <= 3x floor, changed <= 10x floor, 50 tabs <= 0.25 of a core.

    .venv/bin/python bench/g1_polls.py [--videos 100000] [--tabs 50] [--seconds 20]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script

from bench._harness import (  # noqa: E402 (the line above makes `bench` importable)
    DUMMY_TASKS,
    PERF_KEY_ENV,
    PY,
    Workspace,
    django_env,
    free_port,
    goal,
    log,
    session_cookie,
    setup_django,
    throwaway_database,
    wait_port,
)

ACTIVE = 40  # the newest rows, in flight: page 1 polls
USERS = 10
TABLE = "/?page=1&view=table"


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process and all its threads, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_cpu(master: int) -> float:
    """gunicorn's CPU: the master and every worker it forked."""
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return cpu_seconds(master) + sum(cpu_seconds(int(pid)) for pid in children)


def fill(count: int, users: list[Any], provider: Any) -> None:
    """`count` videos in one statement: every column from a template row, the varying ones
    as SQL over generate_series (g = 1 is the newest)."""
    from django.db import connection

    from jobs.models import Video

    template = Video(
        provider=provider,
        owner=users[0],
        model="sora-2",
        prompt="",
        size="720x1280",
        seconds="4",
        submission=Video.Submission.SUBMITTED,
    )
    owners = ",".join(str(u.pk) for u in users)
    active = f"g <= {ACTIVE}"
    at = "now() - interval '1 hour' - g * interval '1 second'"
    sql = {
        "video_id": "'video_' || md5(g::text)",
        "idempotency_key": "md5('key' || g)::uuid",
        "prompt": "'job ' || g || ': a paper boat drifts down a rainy street, seen from above'",
        "owner_id": f"(ARRAY[{owners}])[1 + g %% {len(users)}]",  # %% for the placeholder rule
        "status": f"CASE WHEN {active} THEN 'in_progress' ELSE 'completed' END",
        "progress": f"CASE WHEN {active} THEN 10 + g ELSE 100 END",
        "asset_state": f"CASE WHEN {active} THEN 'pending' ELSE 'archived' END",
        "video_file": f"CASE WHEN {active} THEN '' ELSE 'archive/' || g || '/video.mp4' END",
        "thumbnail_file": f"CASE WHEN {active} THEN '' ELSE 'archive/' || g || '/thumb.webp' END",
        "requested_at": at,
        "created_at": at,
        "updated_at": at,
        "expires_at": f"CASE WHEN {active} THEN NULL ELSE now() + interval '1 hour' END",
    }
    columns, values, params = [], [], []
    for f in Video._meta.concrete_fields:
        if f.primary_key:
            continue
        columns.append(connection.ops.quote_name(str(f.column)))
        if f.column in sql:
            values.append(sql[f.column])
        else:
            values.append("%s")
            params.append(f.get_db_prep_save(getattr(template, f.attname), connection))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {Video._meta.db_table} ({', '.join(columns)}) "
            f"SELECT {', '.join(values)} FROM generate_series(1, %s) AS g",
            [*params, count],
        )
        cursor.execute(f"ANALYZE {Video._meta.db_table}")


@dataclass
class Tab:
    """One open tab: a logged-in session polling one URL the way app.js does."""

    base: str
    cookie: str
    url: str
    etag: str = ""
    session: Any = None
    counts: dict[int, int] = field(default_factory=dict)
    wire: list[int] = field(default_factory=list)  # body bytes as sent (compressed)

    def poll(self) -> Any:
        import requests

        if self.session is None:
            self.session = requests.Session()
            self.session.cookies.set("sessionid", self.cookie)
        headers = {"HX-Request": "true", "Accept-Encoding": "gzip"}
        if self.etag:
            headers["If-None-Match"] = self.etag
        r = self.session.get(self.base + self.url, headers=headers, timeout=30, stream=True)
        raw = r.raw.read(decode_content=False)  # the bytes on the wire
        self.counts[r.status_code] = self.counts.get(r.status_code, 0) + 1
        self.wire.append(len(raw))
        if r.status_code == 200:
            self.etag = r.headers.get("ETag", "")
        r.close()
        return r


def per_request(master: int, count: int, step: Any) -> float:
    """Milliseconds of server CPU per request over `count` calls of `step()`."""
    before = server_cpu(master)
    for _ in range(count):
        step()
    return 1000 * (server_cpu(master) - before) / count


def bump(pk: int) -> None:
    from django.db.models import F

    from jobs.models import Video

    Video.objects.filter(pk=pk).update(progress=(F("progress") + 1) % 99)


def tabs_run(tabs: list[Tab], seconds: float, tick: float, master: int, moving: list[int]) -> float:
    """Every tab polls each `tick` while 5 running jobs move every 2 s; returns the server's
    CPU as a fraction of one core over the run."""
    stop = threading.Event()

    def run(tab: Tab) -> None:
        time.sleep(random.random() * tick)  # tabs opened at different moments
        while not stop.is_set():
            started = time.monotonic()
            tab.poll()
            stop.wait(max(0.0, tick - (time.monotonic() - started)))

    def tracker() -> None:
        from django.db import connection

        while not stop.wait(2.0):
            for pk in random.sample(moving, 5):
                bump(pk)
        connection.close()

    threads = [threading.Thread(target=run, args=(t,), daemon=True) for t in tabs]
    threads.append(threading.Thread(target=tracker, daemon=True))
    for t in tabs:
        t.poll()  # each tab's page load gave it a version
    before, wall = server_cpu(master), time.monotonic()
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    return (server_cpu(master) - before) / (time.monotonic() - wall)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--videos", type=int, default=100_000)
    parser.add_argument("--tabs", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--requests", type=int, default=300, help="per single-request figure")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_PG_URL", "postgres://root@127.0.0.1:5432/postgres"),
    )
    args = parser.parse_args()
    with Workspace("g1") as ws, throwaway_database(ws.dir, args.database_url) as url:
        env = django_env(url, ws.dir / "media", tasks_backend=DUMMY_TASKS, api_key_env=PERF_KEY_ENV)
        setup_django(env)
        from django.conf import settings
        from django.contrib.auth import get_user_model

        from jobs.models import Provider, Video

        users = [get_user_model().objects.create_user(f"user{n}") for n in range(USERS)]
        provider = Provider.objects.create(
            name="Sim", base_url="http://127.0.0.1:9/v1", api_key_env=PERF_KEY_ENV
        )
        started = time.monotonic()
        fill(args.videos, users, provider)
        log(f"{Video.objects.count():,} videos in {time.monotonic() - started:.1f} s")
        cookies = [session_cookie(u) for u in users]
        port = free_port()
        gunicorn = ws.spawn(
            [PY, "-m", "gunicorn", "bench._g1_wsgi:application", "--worker-class", "gthread",
             "--workers", "2", "--threads", "8", "--bind", f"127.0.0.1:{port}",
             "--keep-alive", "5"],
            env,
            log="gunicorn.log",
        )  # fmt: skip
        wait_port(port, gunicorn, timeout=60)
        base, master = f"http://127.0.0.1:{port}", gunicorn.pid
        try:
            return measure(args, base, master, cookies, settings.TABLE_POLL_SECONDS)
        finally:
            from django.db import connections

            ws.stop(gunicorn)
            connections.close_all()  # so the database can be dropped


def measure(args: Any, base: str, master: int, cookies: list[str], tick: float) -> int:
    from jobs.models import Video

    page = list(Video.objects.order_by("-requested_at", "-pk").values_list("pk", flat=True)[:25])
    moving = [pk for pk in page[: min(ACTIVE, 25)]]
    me = Tab(base, cookies[0], TABLE)
    for _ in range(20):  # warm every worker thread's connection and caches
        Tab(base, cookies[0], "/bench/floor/").poll()
        me.poll()
    idle_before = server_cpu(master)
    time.sleep(5)
    idle = (server_cpu(master) - idle_before) / 5
    floor_tab = Tab(base, cookies[0], "/bench/floor/")
    floor = per_request(master, args.requests, floor_tab.poll)
    me.poll()
    unchanged = per_request(master, args.requests, me.poll)
    assert set(me.counts) >= {304} and me.wire[-1] == 0, me.counts
    not_modified_wire = me.wire[-1]

    def change_then_poll() -> None:
        bump(random.choice(moving))
        r = me.poll()
        assert r.status_code == 200 and r.headers.get("HX-Reswap") == "none", r.status_code

    changed_ms = per_request(master, args.requests // 2, change_then_poll)
    delta_wire = me.wire[-1]
    whole_tab = Tab(base, cookies[0], TABLE)

    def whole_poll() -> None:
        whole_tab.etag = ""  # a tab with no version yet: the whole partial
        whole_tab.poll()

    whole = per_request(master, args.requests // 4, whole_poll)
    whole_wire = whole_tab.wire[-1]
    plain = len(whole_tab.session.get(base + TABLE, headers={"HX-Request": "true",
                "Accept-Encoding": "identity"}).content)  # fmt: skip
    detail = Tab(base, cookies[1], f"/videos/{moving[1]}/")
    detail.poll()
    detail_ms = per_request(master, args.requests // 2, detail.poll)

    kinds = [TABLE, "/?page=1&view=gallery", "/?mine=1&page=1&view=table",
             "/?status=in_progress&page=1&view=table", None]  # fmt: skip
    tabs = [
        Tab(base, cookies[n % USERS], kinds[n % 5] or f"/videos/{moving[n % len(moving)]}/")
        for n in range(args.tabs)
    ]
    log(f"{args.tabs} tabs polling every {tick:g} s for {args.seconds:g} s")
    core = tabs_run(tabs, args.seconds, tick, master, moving)
    answers: dict[int, int] = {}
    for tab in tabs:
        for status, n in tab.counts.items():
            answers[status] = answers.get(status, 0) + n
    polls = sum(answers.values())
    wire = sum(sum(t.wire) for t in tabs)

    print(f"server idle: {1000 * idle:.1f} ms CPU per second (gunicorn's own timers)")
    print(f"floor (session + user):          {floor:6.2f} ms CPU per request")
    print(f"unchanged poll (304):            {unchanged:6.2f} ms  = {unchanged / floor:.2f}x floor,"
          f" {not_modified_wire} B body")  # fmt: skip
    print(f"changed poll (1 row swapped):    {changed_ms:6.2f} ms  = {changed_ms / floor:.2f}x"
          f" floor, {delta_wire:,} B gzipped body")  # fmt: skip
    print(f"whole table (no version):        {whole:6.2f} ms  = {whole / floor:.2f}x floor,"
          f" {whole_wire:,} B gzipped ({plain:,} B plain)")  # fmt: skip
    print(f"detail panel, unchanged (304):   {detail_ms:6.2f} ms  = {detail_ms / floor:.2f}x floor")
    print(
        f"{args.tabs} tabs: {polls} polls in {args.seconds:g} s, answers {answers}, "
        f"{wire / max(polls, 1):.0f} B body per poll; server CPU {core:.3f} of a core"
    )
    met = unchanged <= 3 * floor and changed_ms <= 10 * floor and core <= 0.25
    return goal(
        f"G1 videos={args.videos} floor_ms={floor:.2f} unchanged_x={unchanged / floor:.2f} "
        f"changed_x={changed_ms / floor:.2f} tabs={args.tabs} core={core:.3f} "
        f"P3 cpu_per_304_ms={unchanged:.2f} goal: unchanged<=3x changed<=10x core<=0.25",
        met,
    )


if __name__ == "__main__":
    sys.exit(main())
