"""Persistent job store (SQLite): jobs, idempotency keys and webhook events.

What a job is and how its state follows the clock is in `lifecycle`.
"""

from __future__ import annotations

import builtins
import json
import random
import secrets
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import Settings
from .lifecycle import CANCELLED, SAMPLE_PROMPTS, SECONDS, Job, Plan, model_sizes

# Re-exported: tests/e2e reads the render-time constant from here.
from .lifecycle import SECONDS_PER_CLIP_SECOND as SECONDS_PER_CLIP_SECOND
from .quirks import file_name, new_video_id

DB_FILE = "simulator.sqlite3"  # in the data dir


class UnknownCursor(LookupError):
    pass


class NotFinished(RuntimeError):
    """Delete/expire of a job that is still queued or in progress."""


SCHEMA = """
CREATE TABLE IF NOT EXISTS videos (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    model TEXT NOT NULL,
    prompt TEXT NOT NULL,
    size TEXT NOT NULL,
    seconds TEXT NOT NULL,
    created REAL NOT NULL,
    duration REAL NOT NULL,
    fail_at REAL,
    error_code TEXT,
    error_message TEXT,
    expires_after REAL NOT NULL,
    expired_at REAL,
    remixed_from TEXT,
    reference TEXT,
    deleted INTEGER NOT NULL DEFAULT 0,
    notified INTEGER NOT NULL DEFAULT 0,
    terminal REAL NOT NULL,
    pad_bytes INTEGER
);
CREATE INDEX IF NOT EXISTS videos_pending ON videos (notified, terminal);
CREATE TABLE IF NOT EXISTS idempotency (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    video_id TEXT NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE TABLE IF NOT EXISTS events (
    id TEXT PRIMARY KEY,
    webhook_id TEXT NOT NULL,
    video_id TEXT NOT NULL,
    type TEXT NOT NULL,
    payload TEXT NOT NULL,
    due REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    sends_left INTEGER NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending'
);
CREATE INDEX IF NOT EXISTS events_due ON events (state, due);
"""

JOB_COLUMNS = (
    "seq, id, model, prompt, size, seconds, created, duration, fail_at, error_code, "
    "error_message, expires_after, expired_at, remixed_from, reference, deleted, "
    "notified, pad_bytes"
)


@dataclass(frozen=True)
class Event:
    id: str
    webhook_id: str
    video_id: str
    type: str
    payload: str
    attempts: int
    sends_left: int


class Store:
    """All persistent state. One connection guarded by a lock: every query here is tiny, and a
    single writer keeps the idempotency check-then-insert atomic without retry loops."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.media_dir = data_dir / "media"
        self.reference_dir = data_dir / "references"
        data_dir.mkdir(parents=True, exist_ok=True)
        self.media_dir.mkdir(exist_ok=True)
        self.reference_dir.mkdir(exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(
            data_dir / DB_FILE, check_same_thread=False, isolation_level=None
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _job(self, row: tuple[Any, ...] | None) -> Job | None:
        return None if row is None else Job(*row)

    # -- jobs -------------------------------------------------------------------------------

    def get(self, video_id: str, include_deleted: bool = False) -> Job | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {JOB_COLUMNS} FROM videos WHERE id = ?", (video_id,)
            ).fetchone()
        job = self._job(row)
        if job is None or (job.deleted and not include_deleted):
            return None
        return job

    def create(
        self,
        *,
        model: str,
        prompt: str,
        size: str,
        seconds: str,
        plan: Plan,
        remixed_from: str | None = None,
        reference: tuple[bytes, str] | None = None,
        reference_from: str | None = None,
        idempotency: tuple[str, str] | None = None,
        now: float | None = None,
        notified: bool = False,
        video_id: str | None = None,
    ) -> tuple[Job, bool]:
        """Insert a job, or return the job already stored under the idempotency key.

        Returns (job, created). The key lookup and the insert share one transaction, so two
        concurrent retries with the same key still create a single job.
        """
        video_id = video_id or new_video_id([])
        with self._tx() as db:
            if idempotency is not None:
                row = db.execute(
                    "SELECT video_id FROM idempotency WHERE scope = ? AND key = ?", idempotency
                ).fetchone()
                if row is not None:
                    existing = self.get(row[0], include_deleted=True)
                    if existing is not None:
                        return existing, False
            ref_name = None
            if reference is not None:
                data, ext = reference
                ref_name = f"{file_name(video_id)}.{ext}"
                (self.reference_dir / ref_name).write_bytes(data)
            elif reference_from is not None:
                src = self.reference_dir / reference_from
                if src.exists():
                    ref_name = f"{file_name(video_id)}{src.suffix}"
                    shutil.copyfile(src, self.reference_dir / ref_name)
            created = time.time() if now is None else now
            terminal = created + plan.duration * (plan.fail_at if plan.fail_at is not None else 1)
            db.execute(
                "INSERT INTO videos (id, model, prompt, size, seconds, created, duration, fail_at,"
                " error_code, error_message, expires_after, remixed_from, reference, notified,"
                " terminal) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    video_id,
                    model,
                    prompt,
                    size,
                    seconds,
                    created,
                    plan.duration,
                    plan.fail_at,
                    plan.error_code,
                    plan.error_message,
                    plan.expires_after,
                    remixed_from,
                    ref_name,
                    int(notified),
                    terminal,
                ),
            )
            if idempotency is not None:
                db.execute(
                    "INSERT INTO idempotency (scope, key, video_id, created) VALUES (?, ?, ?, ?)",
                    (*idempotency, video_id, created),
                )
        job = self.get(video_id)
        assert job is not None
        return job, True

    def list(self, *, after: str | None, limit: int, order: str) -> tuple[list[Job], bool]:
        """One page ordered by creation (seq is monotonic with created_at).

        The cursor may name a deleted job: a client deleting while it pages must not break.
        """
        with self._lock:
            clause, params = "deleted = 0", []
            if after is not None:
                row = self._db.execute("SELECT seq FROM videos WHERE id = ?", (after,)).fetchone()
                if row is None:
                    raise UnknownCursor(after)
                clause += " AND seq > ?" if order == "asc" else " AND seq < ?"
                params.append(row[0])
            direction = "ASC" if order == "asc" else "DESC"
            rows = self._db.execute(
                f"SELECT {JOB_COLUMNS} FROM videos WHERE {clause} ORDER BY seq {direction} LIMIT ?",
                (*params, limit + 1),
            ).fetchall()
        jobs = [Job(*row) for row in rows]
        return jobs[:limit], len(jobs) > limit

    def delete(self, video_id: str, now: float) -> Job | None:
        with self._tx() as db:
            job = self.get(video_id)
            if job is None:
                return None
            if job.state(now).status not in ("completed", "failed"):
                raise NotFinished(job.state(now).status)
            db.execute("UPDATE videos SET deleted = 1, notified = 1 WHERE id = ?", (video_id,))
        self.remove_files(job)
        return job

    def cancel(self, video_id: str, now: float) -> Job | None:
        """Stop a queued or in-progress job where it stands (--allow-cancel): it ends now, with
        status "cancelled" and no webhook. NotFinished if it already ended."""
        with self._tx() as db:
            job = self.get(video_id)
            if job is None:
                return None
            if job.state(now).status not in ("queued", "in_progress"):
                raise NotFinished(job.state(now).status)
            frac = (now - job.created) / job.duration if job.duration > 0 else 0.0
            db.execute(
                "UPDATE videos SET fail_at = ?, error_code = ?, error_message = ?, terminal = ?,"
                " notified = 1 WHERE id = ?",
                (frac, CANCELLED, "Cancelled at the client's request.", now, video_id),
            )
        return self.get(video_id)

    def expire(self, video_id: str, now: float) -> Job | None:
        with self._tx() as db:
            job = self.get(video_id)
            if job is None:
                return None
            if job.state(now).status != "completed":
                raise NotFinished(job.state(now).status)
            db.execute("UPDATE videos SET expired_at = ? WHERE id = ?", (now, video_id))
        return self.get(video_id)

    def set_pad_bytes(self, video_id: str, pad: int) -> int:
        """Fix the padding of a video at its first download so Range resumes stay consistent."""
        with self._tx() as db:
            row = db.execute("SELECT pad_bytes FROM videos WHERE id = ?", (video_id,)).fetchone()
            if row is not None and row[0] is not None:
                return int(row[0])
            db.execute("UPDATE videos SET pad_bytes = ? WHERE id = ?", (pad, video_id))
        return pad

    def seed(
        self,
        count: int,
        settings: Settings,
        *,
        model: str | None = None,
        size: str | None = None,
        seconds: str | None = None,
    ) -> builtins.list[Job]:  # `list` is a method here
        """Completed sample videos, finished right now (no webhook: they never 'finished').

        Model, size and length are drawn at random unless given (tests pin them)."""
        jobs = []
        now = time.time()
        # Walk a shuffled copy of the prompts so a small seed never repeats one.
        prompts = random.sample(SAMPLE_PROMPTS, len(SAMPLE_PROMPTS))
        for index in range(count):
            job_model = model or random.choice(("sora-2", "sora-2", "sora-2-pro"))
            job_size = size or random.choice(model_sizes(job_model))
            job_seconds = seconds or random.choice(SECONDS)
            plan = Plan(0.0, None, None, None, settings.expires_after / settings.speed)
            job, _ = self.create(
                model=job_model,
                prompt=prompts[index % len(prompts)],
                size=job_size,
                seconds=job_seconds,
                plan=plan,
                now=now,
                notified=True,
                video_id=new_video_id(settings.quirks),
            )
            jobs.append(job)
        return jobs

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM videos").fetchone()[0])

    def job_dir(self, video_id: str) -> Path:
        return self.media_dir / file_name(video_id)

    def remove_files(self, job: Job) -> None:
        shutil.rmtree(self.job_dir(job.id), ignore_errors=True)
        if job.reference:
            (self.reference_dir / job.reference).unlink(missing_ok=True)

    def reset(self) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM videos")
            db.execute("DELETE FROM idempotency")
            db.execute("DELETE FROM events")
            for folder in (self.media_dir, self.reference_dir):
                shutil.rmtree(folder, ignore_errors=True)
                folder.mkdir(exist_ok=True)

    # -- webhook bookkeeping ------------------------------------------------------------------

    def claim_finished(self, now: float) -> builtins.list[Job]:
        """Jobs that reached completed/failed since the last call, each returned exactly once."""
        with self._tx() as db:
            rows = db.execute(
                f"SELECT {JOB_COLUMNS} FROM videos WHERE notified = 0 AND terminal <= ?"
                " ORDER BY terminal",
                (now,),
            ).fetchall()
            if rows:
                db.executemany(
                    "UPDATE videos SET notified = 1 WHERE seq = ?", [(row[0],) for row in rows]
                )
        return [Job(*row) for row in rows]

    def add_event(self, job: Job, event_type: str, created_at: int, due: float, sends: int) -> None:
        event_id = "evt_" + secrets.token_hex(16)
        payload = json.dumps(
            {
                "id": event_id,
                "object": "event",
                "created_at": created_at,
                "type": event_type,
                "data": {"id": job.id},
            },
            separators=(",", ":"),
        )
        with self._tx() as db:
            db.execute(
                "INSERT INTO events (id, webhook_id, video_id, type, payload, due,"
                " sends_left) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (event_id, "wh_" + secrets.token_hex(16), job.id, event_type, payload, due, sends),
            )

    def take_due_events(self, now: float, limit: int = 32) -> builtins.list[Event]:
        with self._tx() as db:
            rows = db.execute(
                "SELECT id, webhook_id, video_id, type, payload, attempts, sends_left FROM events"
                " WHERE state = 'pending' AND due <= ? ORDER BY due LIMIT ?",
                (now, limit),
            ).fetchall()
            db.executemany(
                "UPDATE events SET state = 'sending' WHERE id = ?", [(row[0],) for row in rows]
            )
        return [Event(*row) for row in rows]

    def finish_event(
        self,
        event_id: str,
        *,
        state: str,
        due: float = 0.0,
        attempts: int | None = None,
        sends_left: int | None = None,
    ) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE events SET state = ?, due = ?, attempts = COALESCE(?, attempts),"
                " sends_left = COALESCE(?, sends_left) WHERE id = ?",
                (state, due, attempts, sends_left, event_id),
            )

    def requeue_stuck_events(self) -> None:
        """Deliveries interrupted by a restart go out again (receivers dedupe by webhook-id)."""
        with self._tx() as db:
            db.execute("UPDATE events SET state = 'pending' WHERE state = 'sending'")

    def events_summary(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute("SELECT state, COUNT(*) FROM events GROUP BY state").fetchall()
        return {state: int(n) for state, n in rows}
