"""Reduced runs of the reliability benches: fault soak, crash recovery, concurrent workers.

Each bench is a separate program with its own simulator, throwaway database (a fresh database
on the PostgreSQL server when DATABASE_URL names one) and worker subprocesses, so these tests
run them as subprocesses and read their verdict line. They are independent, so the module starts
all the selected ones at once: most of their time is spent waiting on leases, back-off and the
simulator, which overlaps well. The full-size runs and their figures are in docs/reliability.md.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATABASE_URL = os.environ.get("DATABASE_URL", "")
ON_POSTGRES = DATABASE_URL.startswith(("postgres://", "postgresql://"))
LIMIT = 120  # seconds; each bench is bounded by its own --deadline well below this

BENCHES: dict[str, list[str]] = {
    # 30 % of provider requests faulted, every kind; many jobs fail at the provider so the
    # run is not dominated by the simulator encoding an MP4 for every completed job.
    "test_a_faulty_provider_loses_and_duplicates_nothing": [
        "bench/soak.py",
        "--jobs=30",
        "--fault-rate=0.3",
        "--fail-rate=0.6",
        "--hang-seconds=1",
        "--client-timeout=0.5",
        "--deadline=90",
    ],
    "test_a_killed_tracker_recovers_everything": [
        "bench/crash.py",
        "--jobs=4",
        "--pad-mb=48",
        "--speed=10",
        "--lease=3",
        "--deadline=60",
    ],
    "test_concurrent_workers_never_do_a_job_twice": [
        "bench/concurrency.py",
        "--jobs=60",
        "--fail-rate=0.75",
        "--speed=20",
        "--deadline=90",
    ],
}


@dataclass
class Bench:
    proc: subprocess.Popen[str]
    output: Path

    def verdict(self) -> tuple[dict[str, str], str]:
        """Wait for the bench; its last line is `<name> key=value …`."""
        try:
            self.proc.wait(timeout=LIMIT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"bench did not finish in {LIMIT} s:\n{self.output.read_text()[-3000:]}")
        text = self.output.read_text()
        last = text.strip().splitlines()[-1] if text.strip() else ""
        fields = dict(part.split("=", 1) for part in last.split()[1:] if "=" in part)
        return fields, text


@pytest.fixture(scope="module")
def benches(request: pytest.FixtureRequest) -> Iterator[dict[str, Bench]]:
    selected = {item.name for item in request.session.items if item.module is request.module}
    if not ON_POSTGRES:
        selected.discard("test_concurrent_workers_never_do_a_job_twice")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    started: dict[str, Bench] = {}
    with tempfile.TemporaryDirectory(prefix="reliability-") as tmp:
        for name in sorted(selected & set(BENCHES)):
            output = Path(tmp, f"{name}.log")
            with output.open("w") as out:
                proc = subprocess.Popen(
                    [sys.executable, *BENCHES[name]],
                    cwd=ROOT,
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
            started[name] = Bench(proc, output)
        try:
            yield started
        finally:
            for bench in started.values():
                if bench.proc.poll() is None:
                    bench.proc.kill()
                    bench.proc.wait()


def test_a_faulty_provider_loses_and_duplicates_nothing(benches: dict[str, Bench]) -> None:
    fields, text = benches["test_a_faulty_provider_loses_and_duplicates_nothing"].verdict()
    assert fields.get("jobs") == "30", text[-3000:]
    assert (fields["lost"], fields["duplicated"], fields["stuck"]) == ("0", "0", "0"), text[-3000:]
    assert fields["final"] == "30"
    assert int(fields["completed"]) + int(fields["failed"]) == 30
    assert "faulted (" in text  # the provider really did fail requests
    assert benches["test_a_faulty_provider_loses_and_duplicates_nothing"].proc.returncode == 0


def test_a_killed_tracker_recovers_everything(benches: dict[str, Bench]) -> None:
    fields, text = benches["test_a_killed_tracker_recovers_everything"].verdict()
    assert fields.get("kills") == "3", text[-3000:]
    assert (fields["lost"], fields["duplicated"], fields["stuck"]) == ("0", "0", "0"), text[-3000:]
    assert fields["final"] == fields["archived"] == "4"  # every job completed and archived
    assert fields["bad_archives"] == "0"  # no half-written file was marked archived
    assert int(fields["half_written_at_kill"]) >= 1  # the kill really was mid-download
    assert fields["partial_left"] == "0"  # the restarted tracker cleaned them up
    assert fields["jobs_created"] == fields["local_submitted"] == "4"  # unknown outcome: no dup
    assert fields["repeated_transitions"] == "0"
    assert benches["test_a_killed_tracker_recovers_everything"].proc.returncode == 0


@pytest.mark.skipif(not ON_POSTGRES, reason="SKIP LOCKED claims need PostgreSQL (DATABASE_URL)")
def test_concurrent_workers_never_do_a_job_twice(benches: dict[str, Bench]) -> None:
    fields, text = benches["test_concurrent_workers_never_do_a_job_twice"].verdict()
    assert fields.get("trackers") == "2" and fields["workers"] == "1", text[-3000:]
    assert (fields["lost"], fields["duplicated"], fields["stuck"]) == ("0", "0", "0"), text[-3000:]
    assert fields["final"] == "60"
    assert fields["remix_posts"] == fields["jobs_created"] == "60"  # each sent exactly once
    assert fields["double_downloads"] == "0"  # each completed job archived exactly once
    assert fields["repeated_transitions"] == "0"
    assert benches["test_concurrent_workers_never_do_a_job_twice"].proc.returncode == 0
