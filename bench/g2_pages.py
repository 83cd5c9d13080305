"""G2 (and the honest P1): every page costs the same at 1,000 and at 100,000 videos.

Two throwaway databases, each migrated here and filled by bench/_pages.py with a team's
history (1,000 videos = its last ten days, 100,000 = its last 33 months, with charges, history
rows, audit entries, remixes and batches) plus the same fixed cast (55 budgets, a 201-video
family with 2.8 KB prompts, collections, reviews). Each database gets its own gunicorn (one
sync worker, DEBUG off, `bench._g2_wsgi`: Django's application, which adds X-Bench-* headers
with the request's SQL statements, its CPU time and its wall time in the server).

Every page is asked ROUNDS times per size, alternating the sizes so machine noise hits both,
and never twice the same thing: other videos, other pages (2..40) of each sort, other search
terms, other months (bench/_pages.page_urls). The figure per page is the median server wall
time and CPU at each size, their ratio, and the query count (the same at both sizes, or the
page has an N+1). A warm-up request of each kind comes first (templates, the connection).

    .venv/bin/python bench/g2_pages.py                       # PostgreSQL, 1,000 vs 100,000
    .venv/bin/python bench/g2_pages.py --sqlite              # the same on SQLite files
    .venv/bin/python bench/g2_pages.py --big 20000 --rounds 5   # quicker, while developing
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from contextlib import ExitStack
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
    goal,
    http_get,
    log,
    median,
    session_cookie,
    setup_django,
    sqlite_url,
    throwaway_database,
)
from simulator.testing import free_port, wait_port  # noqa: E402

PG_SERVER = "postgres://root@127.0.0.1:5432/postgres"
MAX_RATIO = 3.0
MAX_CHANGE_PAGE = 200_000  # bytes
MAX_FAMILY_SECONDS = 1.0
MAX_DIFF_SECONDS = 0.5


@dataclass
class Site:
    label: str
    url: str  # the database's
    cast: Any = None
    base: str = ""  # gunicorn's root URL
    cookie: str = ""
    samples: dict[str, list[tuple[int, float, float, int]]] = field(default_factory=dict)

    def get(self, path: str) -> tuple[int, float, float, int]:
        """(queries, server wall ms, server CPU ms, bytes) of one GET."""
        status, headers, body = http_get(self.base + path, {"Cookie": f"sessionid={self.cookie}"})
        if status != 200:
            raise SystemExit(f"{self.label}: GET {path} answered {status}: {body[:300]!r}")
        h = {k.lower(): v for k, v in headers.items()}
        return (
            int(h["x-bench-queries"]),
            int(h["x-bench-wall-us"]) / 1000,
            int(h["x-bench-cpu-us"]) / 1000,
            len(body),
        )


def fill(site: Site, size: int) -> None:
    """Schema and data in `site`'s database, from this process (Django is set up on it)."""
    from django.core.management import call_command
    from django.db import connection

    from bench._pages import populate

    connection.close()
    connection.settings_dict.update(_db_settings(site.url))
    call_command("migrate", verbosity=0, interactive=False)
    started = time.monotonic()
    site.cast = populate(size)
    site.cookie = session_cookie(site.cast.boss)
    log(f"{site.label}: {size:,} videos (+ the cast) in {time.monotonic() - started:.0f} s")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")  # what autovacuum would have done by the time anyone looks
    connection.close()


def _db_settings(url: str) -> dict[str, Any]:
    import dj_database_url

    parsed = dj_database_url.parse(url)
    return {k: v for k, v in parsed.items() if k in ("NAME", "USER", "PASSWORD", "HOST", "PORT")}


def serve(ws: Workspace, env: dict[str, str], site: Site) -> None:
    port = free_port()
    proc = ws.spawn(
        [PY, "-m", "gunicorn", "bench._g2_wsgi:application", "--workers", "1",
         "--worker-class", "sync", "--bind", f"127.0.0.1:{port}", "--timeout", "120"],
        {**env, "DATABASE_URL": site.url},
        log=f"gunicorn-{site.label}.log",
    )  # fmt: skip
    wait_port(port, proc, timeout=60)
    site.base = f"http://127.0.0.1:{port}"


def measure(sites: list[Site], rounds: int) -> None:
    from bench._pages import page_urls

    names = list(page_urls(sites[0].cast, 0))
    for site in sites:  # warm-up: one of each kind, not counted
        for path in page_urls(site.cast, 10_000).values():
            site.get(path)
    for k in range(rounds):
        order = sites if k % 2 == 0 else sites[::-1]
        for name in names:
            for site in order:
                site.samples.setdefault(name, []).append(site.get(page_urls(site.cast, k)[name]))


def report(small: Site, big: Site) -> tuple[bool, float, int, int, list[str]]:
    print(
        f"\n{'page':22} {'queries':>9} {'wall ms':>17} {'ratio':>6} {'CPU ms':>15} {'ratio':>6}"
        f" {'KB':>13}"
    )
    sizes = f"{small.label} / {big.label}"
    print(f"{'':22} {'both':>9} {sizes:>17} {'':>6} {sizes:>15} {'':>6} {sizes:>13}")
    worst, grew, most = 0.0, [], 0
    missed: list[str] = []
    for name, few in small.samples.items():
        many = big.samples[name]
        q_few, q_many = max(s[0] for s in few), max(s[0] for s in many)
        w_few, w_many = median(s[1] for s in few), median(s[1] for s in many)
        c_few, c_many = median(s[2] for s in few), median(s[2] for s in many)
        kb_few, kb_many = median(s[3] for s in few) / 1000, median(s[3] for s in many) / 1000
        ratio = w_many / w_few
        worst, most = max(worst, ratio), max(most, q_many)
        if q_few != q_many or len({s[0] for s in many}) > 1 and min(s[0] for s in many) < q_few:
            grew.append(name)
        if ratio > MAX_RATIO:
            missed.append(f"{name} {ratio:.2f}x")
        print(
            f"{name:22} {q_few:>4} {q_many:>4} {w_few:>8.1f} {w_many:>8.1f} {ratio:>6.2f}"
            f" {c_few:>7.1f} {c_many:>7.1f} {c_many / c_few:>6.2f} {kb_few:>6.1f} {kb_many:>6.1f}"
        )
    change = max(s[3] for s in big.samples["admin change"])
    family = max(s[1] for s in big.samples["family"]) / 1000
    print(f"\nadmin change page at {big.label}: at most {change / 1000:.1f} KB")
    print(f"family page (201 videos, 2.8 KB prompts) at {big.label}: at most {family:.2f} s")
    if change >= MAX_CHANGE_PAGE:
        missed.append(f"admin change page {change / 1000:.0f} KB")
    if family >= MAX_FAMILY_SECONDS:
        missed.append(f"family {family:.2f} s")
    diff_seconds, shortened = long_diff()
    print(
        f"two 32,000-character prompts diffed in {diff_seconds:.3f} s "
        f"({'shortened, and said so' if shortened else 'word by word'})"
    )
    if diff_seconds >= MAX_DIFF_SECONDS:
        missed.append(f"32,000-character diff {diff_seconds:.2f} s")
    return not grew and not missed, worst, len(grew), most, grew + missed


def long_diff() -> tuple[float, bool]:
    """The slowest of three diffs of two unrelated 32,000-character prompts (here, in-process)."""
    import random

    from bench._pages import _prompt
    from jobs.lib.prompts import prompt_diff

    rng = random.Random(7)
    old, new = (_prompt(rng, 6_000)[:32_000] for _ in range(2))
    times = []
    for _ in range(3):
        started = time.perf_counter()
        diff = prompt_diff(old, new)
        times.append(time.perf_counter() - started)
    return max(times), diff.shortened


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--big", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=9, help="requests per page and size")
    parser.add_argument("--sqlite", action="store_true", help="SQLite files, not PostgreSQL")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_PG_URL", PG_SERVER))
    args = parser.parse_args()
    engine = "SQLite" if args.sqlite else "PostgreSQL"
    with Workspace("g2") as ws, ExitStack() as stack:
        if args.sqlite:
            urls = [sqlite_url(ws.dir / "small.sqlite3"), sqlite_url(ws.dir / "big.sqlite3")]
        else:
            urls = [stack.enter_context(throwaway_database(ws.dir, args.database_url))
                    for _ in range(2)]  # fmt: skip
        small = Site(f"{args.small:,}", urls[0])
        big = Site(f"{args.big:,}", urls[1])
        env = django_env(
            urls[0], ws.dir / "media", tasks_backend=DUMMY_TASKS, api_key_env=PERF_KEY_ENV
        )
        setup_django(env)
        try:
            fill(small, args.small)
            fill(big, args.big)
            for site in (small, big):
                serve(ws, env, site)
            log(f"measuring {args.rounds} rounds on {engine} through gunicorn")
            measure([small, big], args.rounds)
        finally:
            ws.stop_all()
            from django.db import connections

            connections.close_all()  # so the PostgreSQL databases can be dropped
        met, worst, grew, most, missed = report(small, big)
        if missed:
            print("missed: " + ", ".join(missed))
        return goal(
            f"G2 {engine} {args.small:,} vs {args.big:,} videos: worst time ratio={worst:.2f} "
            f"pages whose queries grew={grew} most queries={most} goal: ratio<={MAX_RATIO:g} "
            f"queries constant, change page<200 KB, family<1 s, 32k diff<0.5 s",
            met,
        )


if __name__ == "__main__":
    sys.exit(main())
