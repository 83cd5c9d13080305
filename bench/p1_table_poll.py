"""P1: the htmx table poll costs the same with 10,000 jobs in the DB as with 100.

Two throwaway SQLite files, each migrated here: "small" holds 100 jobs (all in flight), "big"
the same 100 in-flight jobs plus 9,900 finished ones behind them. The poll request is the
one the browser sends each tick (`GET /?page=1` with `HX-Request: true`, answered with the
`#video-table` partial) through django.test.Client, so the figure is server time without the
network. The two databases are measured in alternating blocks so machine noise hits both
alike; the figure is the ratio of medians.

    .venv/bin/python bench/p1_table_poll.py
"""

from __future__ import annotations

import argparse
import random
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
    django_env,
    goal,
    median,
    setup_django,
    sqlite_url,
)

ACTIVE = 100
HISTORY = 9_900
BLOCKS = 30  # alternating blocks per database
PER_BLOCK = 10  # timed requests per block (after one untimed request that reconnects)
URL = "/?page=1"


def make_rows(provider: Any, users: list[Any], *, active: int, history: int) -> None:
    """Bulk-create `history` finished jobs, then `active` newer in-flight ones."""
    from django.utils import timezone

    from jobs.models import Video

    now = timezone.now()
    rng = random.Random(1)
    rows: list[Video] = []
    for i in range(history):
        at = now - timedelta(days=60) + timedelta(seconds=i * 500)
        failed = i % 17 == 0
        rows.append(
            Video(
                provider=provider,
                owner=users[i % len(users)],
                video_id=f"video_{uuid.uuid4().hex}",
                model=rng.choice(["sora-2", "sora-2-pro"]),
                status="failed" if failed else "completed",
                progress=40 if failed else 100,
                prompt=f"history {i}: " + "a slow pan over a harbour at dawn " * rng.randint(1, 6),
                size="720x1280",
                seconds=rng.choice(["4", "8", "12"]),
                submission=Video.Submission.SUBMITTED,
                error_code="moderation_blocked" if failed else "",
                error_message="Blocked by moderation." if failed else "",
                asset_state=Video.Assets.NONE if failed else Video.Assets.ARCHIVED,
                video_file="" if failed else f"archive/{i}/video.mp4",
                thumbnail_file="" if failed else f"archive/{i}/thumbnail.webp",
                created_at=at,
                completed_at=None if failed else at + timedelta(seconds=40),
                requested_at=at,
            )
        )
    Video.objects.bulk_create(rows, batch_size=500)
    rows = []
    rng = random.Random(2)  # its own sequence: both databases get identical in-flight rows
    for i in range(active):
        at = now - timedelta(seconds=active - i)
        # Remixes name their source by provider id only: a local `source` would exist in the
        # big database but not the small one, and the figure must compare equal pages.
        remix_of = f"video_{i:032x}" if i % 3 == 0 else ""
        rows.append(
            Video(
                provider=provider,
                owner=users[i % len(users)],
                video_id=f"video_{uuid.uuid4().hex}",
                model="sora-2",
                status=rng.choice(["queued", "in_progress"]),
                progress=rng.randint(0, 99),
                prompt=f"active {i}: a red balloon drifting over a market square",
                size="720x1280",
                seconds="4",
                submission=Video.Submission.SUBMITTED,
                remixed_from_video_id=remix_of,
                created_at=at,
                requested_at=at,
                next_poll_at=now + timedelta(hours=1),  # nobody polls in this benchmark
            )
        )
    Video.objects.bulk_create(rows, batch_size=500)


def use_database(path: Path) -> None:
    """Point the default connection at another SQLite file (reconnects on next query)."""
    from django.db import connection

    connection.close()
    connection.settings_dict["NAME"] = str(path)


def populate(path: Path, *, history: int) -> Any:
    """Schema, users, a provider and the jobs; returns a logged-in htmx client."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client

    from jobs.models import Provider

    use_database(path)
    call_command("migrate", verbosity=0, interactive=False)
    User = get_user_model()
    users = [User.objects.create_user(name, password=None) for name in ("alice", "bob", "carol")]
    provider = Provider.objects.create(
        name="Sim", base_url="http://127.0.0.1:9/v1", api_key_env="SIMULATOR_API_KEY"
    )
    make_rows(provider, users, active=ACTIVE, history=history)
    client = Client(HTTP_HX_REQUEST="true", HTTP_HOST="127.0.0.1")
    client.force_login(users[0])
    return client


def count_queries(client: Any) -> tuple[int, list[str]]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ctx:
        response = client.get(URL)
    assert response.status_code == 200, response.status_code  # polling: some jobs are active
    return len(ctx.captured_queries), [q["sql"] for q in ctx.captured_queries]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.parse_args()
    with Workspace("p1") as ws:
        small, big = ws.dir / "small.sqlite3", ws.dir / "big.sqlite3"
        env = django_env(
            sqlite_url(small), ws.dir / "media", tasks_backend=DUMMY_TASKS, api_key_env=PERF_KEY_ENV
        )
        setup_django(env)
        started = time.monotonic()
        clients = {
            small: populate(small, history=0),
            big: populate(big, history=HISTORY),
        }
        print(f"created 100 and {ACTIVE + HISTORY:,} jobs in {time.monotonic() - started:.1f} s")

        queries: dict[Path, int] = {}
        for path, client in clients.items():
            use_database(path)
            for _ in range(5):  # warm caches: templates, the connection, SQLite pages
                client.get(URL)
            queries[path], sql = count_queries(client)
        print(f"queries per poll: 100 jobs {queries[small]}, 10,000 jobs {queries[big]}")
        for statement in sql:
            print(f"  {statement[:110]}")

        times: dict[Path, list[float]] = {small: [], big: []}
        for block in range(BLOCKS):
            order = (small, big) if block % 2 == 0 else (big, small)
            for path in order:
                use_database(path)
                clients[path].get(URL)  # reconnects: not timed
                for _ in range(PER_BLOCK):
                    t0 = time.perf_counter()
                    response = clients[path].get(URL)
                    times[path].append(time.perf_counter() - t0)
                    assert response.status_code == 200
        t_small, t_big = median(times[small]) * 1000, median(times[big]) * 1000
        ratio = t_big / t_small
        print(
            f"median poll: 100 jobs {t_small:.2f} ms, 10,000 jobs {t_big:.2f} ms "
            f"({len(times[small])} requests each, alternating blocks)"
        )
        worst = max(queries.values())
        constant = queries[small] == queries[big]
        return goal(
            f"P1 ratio={ratio:.2f} queries={worst} constant={'yes' if constant else 'no'} "
            "goal: ratio<=1.2 queries<=6 constant",
            ratio <= 1.2 and worst <= 6 and constant,
        )


if __name__ == "__main__":
    sys.exit(main())
