"""Reduced runs of the reliability benches (the soak, crash recovery, concurrent workers), and
the fault proxy the soak puts between the dashboard and the simulator.

Each bench is a separate program with its own simulator, throwaway database (a fresh database
on the PostgreSQL server when DATABASE_URL names one) and worker subprocesses, so these tests
run them as subprocesses and read their verdict line. They are independent, so the module starts
all the selected ones at once: most of their time is spent waiting on leases, back-off and the
simulator, which overlaps well. The full-size runs and their figures are in docs/reliability.md.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from bench.fault_proxy import POST_FAULTS
from simulator.testing import Simulator, free_port, wait_port

ROOT = Path(__file__).resolve().parent.parent
DATABASE_URL = os.environ.get("DATABASE_URL", "")
ON_POSTGRES = DATABASE_URL.startswith(("postgres://", "postgresql://"))
# Seconds, under pytest-timeout's 300; each bench stops by its own --deadline (or drain) first.
LIMIT = 270

BENCHES: dict[str, list[str]] = {
    # The soak in --quick mode: 40 actions through the web forms, 30 % faults (simulator and
    # proxy), a provider that ignores Idempotency-Key, every tracker and the task worker
    # SIGKILLed once (a short lease so their claims come back within the test).
    "test_the_soak_loses_duplicates_and_corrupts_nothing": ["bench/soak.py", "--quick"],
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
    selected = {
        item.name
        for item in request.session.items
        if getattr(item, "module", None) is request.module
    }
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


def counts_on(text: str, label: str) -> dict[str, int]:
    """The `name=count` pairs of the soak's line `label: a=1, b=2` (seeded draws in thread
    order, so which fault kinds appear varies from run to run)."""
    line = re.search(rf"^.*\b{label}: (.*)$", text, re.MULTILINE)
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", line[1] if line else "")}


def test_the_soak_loses_duplicates_and_corrupts_nothing(benches: dict[str, Bench]) -> None:
    bench = benches["test_the_soak_loses_duplicates_and_corrupts_nothing"]
    fields, text = bench.verdict()
    assert fields.get("actions") == "40", text[-3000:]
    figures = ("lost", "duplicated", "stuck", "corrupt", "unconfirmed")
    assert {name: fields[name] for name in figures} == dict.fromkeys(figures, "0"), text[-4000:]
    assert fields["unsettled"] == "0"
    assert int(fields["completed"]) + int(fields["failed"]) == 40
    # Every completed job archived, or given up on after ARCHIVE_MAX_ATTEMPTS and saying so.
    assert int(fields["archived"]) + int(fields["unarchived"]) == int(fields["completed"])
    assert fields["jobs_created"] == fields["submitted"] == "40"  # each action made one job
    assert fields["kills"] == str(3 if ON_POSTGRES else 2)  # each tracker and the worker
    # The faults really happened, on both sides and on the POSTs that could double-charge.
    assert sum(counts_on(text, "simulator faults").values()) > 0, text[-3000:]
    proxy = counts_on(text, "proxy")
    assert sum(proxy.get(kind, 0) for kind in POST_FAULTS) > 0, text[-3000:]
    assert bench.proc.returncode == 0


def test_a_killed_tracker_recovers_everything(benches: dict[str, Bench]) -> None:
    fields, text = benches["test_a_killed_tracker_recovers_everything"].verdict()
    assert fields.get("kills") == "3", text[-3000:]
    assert (fields["lost"], fields["duplicated"], fields["stuck"]) == ("0", "0", "0"), text[-3000:]
    assert fields["final"] == fields["archived"] == "4"  # every job completed and archived
    assert fields["bad_archives"] == "0", text[-3000:]  # no half-written file marked archived
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


# --- the fault proxy -----------------------------------------------------------------------

AUTH = {"Authorization": "Bearer sk-test"}


@contextmanager
def fault_proxy(sim: Simulator, *args: str) -> Iterator[str]:
    """bench/fault_proxy.py in front of `sim`; yields its /v1 URL."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "bench/fault_proxy.py", "--port", str(port)]
        + ["--upstream-port", str(sim.port), "--max-seconds", "120", *args],
        cwd=ROOT,
    )
    try:
        wait_port(port, proc)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def proxy_stats(base: str) -> dict[str, Any]:
    return dict(requests.get(base.removesuffix("/v1") + "/_proxy/stats", timeout=5).json())


def test_the_proxy_truncates_bodies_without_content_length(simulator: Simulator) -> None:
    video = simulator.seed(1)[0]
    full = requests.get(f"{simulator.base_url}/videos/{video['id']}/content", headers=AUTH).content
    with fault_proxy(simulator, "--rate", "1", "--kinds", "truncate") as base:
        answer = requests.get(f"{base}/videos/{video['id']}/content", headers=AUTH, timeout=10)
        assert answer.status_code == 200 and "Content-Length" not in answer.headers
        assert 0 < len(answer.content) < len(full) and full.startswith(answer.content)
        listed = requests.get(f"{base}/videos", headers=AUTH, timeout=10)
        with pytest.raises(ValueError):
            listed.json()  # a JSON answer cut short the same way
        posted = requests.post(f"{base}/videos", json={"prompt": "p"}, headers=AUTH, timeout=10)
        assert posted.status_code == 200  # truncation is for GETs
        assert proxy_stats(base)["truncate"] == 2


def test_the_proxy_fails_creates_after_the_provider_made_them(simulator: Simulator) -> None:
    with fault_proxy(simulator, "--rate", "1", "--kinds", "post_5xx") as base:
        answer = requests.post(f"{base}/videos", json={"prompt": "a"}, headers=AUTH, timeout=10)
        assert answer.status_code in (500, 502)
        assert requests.get(f"{base}/videos", headers=AUTH, timeout=10).status_code == 200
    assert simulator.stats()["jobs_created"] == 1
    with fault_proxy(simulator, "--rate", "1", "--kinds", "post_drop") as base:
        with pytest.raises(requests.ConnectionError):
            requests.post(f"{base}/videos", json={"prompt": "b"}, headers=AUTH, timeout=10)
    assert simulator.stats()["jobs_created"] == 2
    prompts = [v["prompt"] for v in simulator_list(simulator)]
    assert sorted(prompts) == ["a", "b"]


def simulator_list(sim: Simulator) -> list[dict[str, Any]]:
    return list(requests.get(f"{sim.base_url}/videos", headers=AUTH, timeout=10).json()["data"])


def test_the_proxy_strips_idempotency_keys(simulator: Simulator) -> None:
    headers = {**AUTH, "Idempotency-Key": "one-key"}
    with fault_proxy(simulator, "--rate", "1", "--kinds", "strip_key") as base:
        for _ in range(2):
            answer = requests.post(f"{base}/videos", json={"prompt": "k"}, headers=headers)
            assert answer.status_code == 200
    assert simulator.stats()["jobs_created"] == 2  # the simulator honours keys it is given


def test_the_proxy_resets_and_stalls_mid_body(simulator: Simulator) -> None:
    video = simulator.seed(1)[0]
    url = f"/videos/{video['id']}/content"
    with fault_proxy(simulator, "--rate", "1", "--kinds", "reset") as base:
        with pytest.raises(requests.RequestException):
            requests.get(base + url, headers=AUTH, timeout=10).raise_for_status()
    with fault_proxy(simulator, "--rate", "1", "--kinds", "stall", "--stall-seconds", "3") as base:
        started = time.monotonic()
        with pytest.raises(requests.RequestException):  # the read times out mid-body
            requests.get(base + url, headers=AUTH, timeout=0.5)
        assert time.monotonic() - started < 3


def test_the_proxy_draws_the_same_faults_from_the_same_seed(simulator: Simulator) -> None:
    counts = []
    for _ in range(2):
        with fault_proxy(simulator, "--rate", "0.5", "--seed", "42") as base:
            for _ in range(30):
                try:
                    requests.get(f"{base}/videos", headers=AUTH, timeout=(5, 0.3))
                except requests.RequestException:
                    pass
            counts.append(proxy_stats(base))
    assert counts[0] == counts[1]
    assert 0 < sum(int(counts[0].get(k, 0)) for k in ("truncate", "reset", "stall")) < 30
