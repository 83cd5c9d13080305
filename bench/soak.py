"""The soak: N user actions through the real web forms, a faulty provider, workers SIGKILLed.

    .venv/bin/python bench/soak.py                      # 500 actions, SQLite, 1 tracker
    DATABASE_URL=postgres://root@127.0.0.1:5432/test .venv/bin/python bench/soak.py
                                                        # a throwaway database, 2 trackers
    .venv/bin/python bench/soak.py --quick              # ~40 actions, for the test suite

On a throwaway database it starts the simulator (--ignore-idempotency: a repeated key makes a
new job, so only the dashboard's own care prevents duplicates; its own random faults on,
truncated downloads and create-then-500 included), bench/fault_proxy.py in front of it (the
dashboard's provider points at the proxy: truncated bodies without Content-Length, resets and
stalls mid-body, 5xx or no answer after the job was created, Idempotency-Key stripped),
`manage.py runserver`, `manage.py db_worker` and `manage.py track_videos` (two on
PostgreSQL). Several users log in at /login/ and press Remix (/videos/<id>/remix/) and Create
(/videos/new/) with requests.Session, posting the rendered form with its hidden key, some of
them twice (a double click, a re-posted form). Meanwhile every tracker and the task worker is
SIGKILLed --kills times each, timed to hit a POST in flight (a row in SENDING) or a download
in flight (a .partial file being written), and restarted at once; the dead worker's claims
come back when their lease (TRACKER_LEASE_SECONDS, default 120 s) runs out, so the drain waits
for that.

At the end, with faults off, every action is reconciled against the simulator's own job list
(read directly, not through the proxy) and every archived file is decoded (bench._verdict).
The last line is the verdict; the exit status is non-zero if anything was lost, duplicated,
stuck, corrupt or unconfirmed (unarchived rows, given up on and saying so, are counted apart).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script

import requests  # noqa: E402

from bench._harness import (  # noqa: E402 (the line above makes `bench` importable)
    DB_TASKS,
    PY,
    ROOT,
    Stack,
    add_stack_options,
    is_postgres,
    log,
    reliability_stack,
    wait_port,
)
from bench._verdict import (  # noqa: E402
    Reconciliation,
    partial_files,
    reconcile,
    wait_for_settled,
)
from simulator.testing import NO_PROXY, free_port  # noqa: E402

PASSWORD = "soak-" + uuid.uuid4().hex  # the throwaway users' password
KEY_FIELD = re.compile(r'name="key" value="([0-9a-f-]{36})"')
CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--actions", type=int, default=500, help="user actions (remix / create)")
    p.add_argument("--quick", action="store_true", help="the test suite's size (see below)")
    p.add_argument("--users", type=int, default=4, help="users, each its own browser")
    p.add_argument("--creates", type=float, default=0.25, help="share of actions that create")
    p.add_argument("--twice", type=float, default=0.1, help="share of forms posted twice")
    p.add_argument("--fault-rate", type=float, default=0.3, help="share of provider requests")
    p.add_argument("--kills", type=int, default=5, help="SIGKILLs of each tracker and worker")
    p.add_argument("--trackers", type=int, default=None, help="default: 1 SQLite, 2 PostgreSQL")
    p.add_argument("--lease", type=int, default=None, help="TRACKER_LEASE_SECONDS (default 120)")
    p.add_argument("--duration", type=float, default=180, help="seconds the actions take")
    p.add_argument("--drain", type=float, default=300, help="seconds to wait after the lease")
    p.add_argument("--speed", type=float, default=40, help="simulator speed (a clip in 0.5 s)")
    p.add_argument("--seed", type=int, default=1, help="seeds the actions and the proxy")
    add_stack_options(p)
    args = p.parse_args(argv)
    if args.quick:
        # Small enough for the test suite on 2 cores: one kill of each process, and a lease
        # of 30 s so the dead worker's claims come back within the test rather than after two
        # minutes. Still longer than any download here: a lease shorter than a download lets
        # a second worker archive the same video at the same time.
        # A generous drain: it ends as soon as every row has settled, and a busy machine (the
        # suite on two xdist workers) may need it.
        args.actions, args.kills, args.duration, args.drain = 40, 1, 20, 150
        args.lease = args.lease or 30
    if args.trackers is None:
        args.trackers = 2 if is_postgres(args.database_url) else 1
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    rate = 1 - (1 - args.fault_rate) ** 0.5  # half the faults at the proxy, half at the sim
    sim_args = ["--speed", str(args.speed), "--ignore-idempotency", "--hang-seconds", "2"]
    sim_args += ["--expires-after", str(3600 * args.speed), "--fail-rate", "0.1", "--fps", "6"]
    sim_args += ["--verbose"]  # a line per request in simulator-<port>.log, to read failures
    env = {
        "TRACKER_THREADS": "4",
        "PROVIDER_TIMEOUT_SECONDS": "2",  # a stalled body (5 s at the proxy) times out
        "POLL_MIN_SECONDS": "0.25",  # time runs --speed times faster at the simulator
        "POLL_MAX_SECONDS": "8",
    }
    if args.lease is not None:
        env["TRACKER_LEASE_SECONDS"] = str(args.lease)
    with reliability_stack("soak", args, sim_args, tasks_backend=DB_TASKS, **env) as stack:
        run = Run(args, stack, rate)
        result = run.go()
        run.stop_workers()
        stack.sim.configure(fault_rate=0)
        outcome = reconcile(stack.sim, run.prompts(), fixtures=0)
        for action in run.actions:
            if action.key is None:  # the form never loaded: the action never happened
                outcome.lost += 1
                outcome.problems.append(f"lost: no form for {action.prompt[:40]!r}")
        leftovers = len(partial_files())
        proxy_stats = run.proxy_stats()
        sim_stats = stack.sim.stats()
    report(args, run, outcome, proxy_stats, sim_stats, leftovers, result, started)
    return 1 if outcome.broken_promises or result["unsettled"] else 0


@dataclass
class Action:
    kind: str  # "remix" or "create"
    user: int
    prompt: str
    source: int | None  # the local pk remixed
    twice: bool
    key: uuid.UUID | None = None  # from the rendered form
    posts: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass
class Kill:
    at: float
    target: str
    trigger: str
    hit: bool  # the trigger condition held when the signal went
    sending: int  # rows in SENDING at that moment
    partials: int  # .partial files being written


class Run:
    """The processes, the browsers and the kills of one soak."""

    def __init__(self, args: argparse.Namespace, stack: Stack, rate: float) -> None:
        self.args, self.stack, self.rate = args, stack, rate
        self.rng = random.Random(args.seed)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.starts: dict[str, int] = {}
        self.kills: list[Kill] = []
        self.actions: list[Action] = []
        self.lock = threading.Lock()
        self.proxy_port = 0

    # --- processes ------------------------------------------------------------------------

    def start(self, name: str) -> None:
        self.starts[name] = self.starts.get(name, 0) + 1
        log_name = f"{name}-{self.starts[name]}.log"
        if name.startswith("tracker"):
            self.procs[name] = self.stack.worker("track_videos", log=log_name)
        else:
            worker = ["db_worker", "--interval", "0.2", "--no-startup-delay", "--no-reload"]
            self.procs[name] = self.stack.worker(*worker, log=log_name)

    def start_proxy(self) -> str:
        self.proxy_port = free_port()
        proxy = self.stack.ws.spawn(
            [PY, str(ROOT / "bench" / "fault_proxy.py"), "--port", str(self.proxy_port)]
            + ["--upstream-port", str(self.stack.sim.port), "--rate", f"{self.rate:.4f}"]
            + ["--seed", str(self.args.seed), "--max-seconds", "7200"],
            self.stack.env,
            "proxy.log",
        )
        wait_port(self.proxy_port, proxy)
        return f"http://127.0.0.1:{self.proxy_port}/v1"

    def proxy_call(self, path: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        import urllib.request

        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{self.proxy_port}{path}", data=data)
        with NO_PROXY.open(request, timeout=10) as response:
            return dict(json.loads(response.read()))

    def proxy_stats(self) -> dict[str, Any]:
        return self.proxy_call("/_proxy/stats")

    def stop_workers(self) -> None:
        for proc in self.procs.values():
            self.stack.ws.stop(proc)

    # --- the run ----------------------------------------------------------------------------

    def go(self) -> dict[str, Any]:
        from django.contrib.auth import get_user_model

        provider, sources, _ = self.stack.fixtures(5)
        users = [
            get_user_model().objects.create_user(f"soak{n}", password=PASSWORD).username
            for n in range(self.args.users)
        ]
        provider.base_url = self.start_proxy()  # from now on every worker call is faulted
        provider.save(update_fields=["base_url"])
        self.stack.sim.configure(fault_rate=self.rate, faults="all")
        names = [f"tracker{n}" for n in range(self.args.trackers)] + ["worker"]
        for name in names:
            self.start(name)
        _, web = self.stack.ws.web(self.stack.env)
        self.plan(provider.pk, [s.pk for s in sources])
        log(
            f"soak: {self.args.actions} actions by {len(users)} users through {web}, "
            f"faults {self.args.fault_rate:.2f} (proxy and simulator {self.rate:.3f} each), "
            f"{self.args.trackers} tracker(s) + 1 task worker, "
            f"{self.args.kills} SIGKILLs each, db {self.stack.database_url.split(':')[0]}"
        )
        browsers = [
            threading.Thread(target=self.browse, args=(web, n, users[n], provider.pk), daemon=True)
            for n in range(len(users))
        ]
        t0 = time.monotonic()
        self.t0 = t0
        for thread in browsers:
            thread.start()
        self.kill_during(names, t0)
        for thread in browsers:
            thread.join(timeout=self.args.duration + 300)
        log(f"actions done after {time.monotonic() - t0:.0f} s; draining")
        last_kill = max((k.at for k in self.kills), default=time.monotonic())
        lease = self.args.lease or 120
        deadline = max(last_kill + lease, time.monotonic()) + self.args.drain
        keys = [a.key for a in self.actions if a.key is not None]
        unsettled = wait_for_settled(keys, deadline, "soak")
        return {"unsettled": unsettled, "seconds_to_settle": time.monotonic() - t0}

    def plan(self, provider_pk: int, sources: list[int]) -> None:
        for n in range(self.args.actions):
            create = self.rng.random() < self.args.creates
            token = uuid.UUID(int=self.rng.getrandbits(128)).hex[:10]
            self.actions.append(
                Action(
                    kind="create" if create else "remix",
                    user=n % self.args.users,
                    prompt=f"soak {n:04d} {token}: {self.rng.choice(SCENES)}",
                    source=None if create else sources[n % len(sources)],
                    twice=self.rng.random() < self.args.twice,
                )
            )

    def prompts(self) -> dict[uuid.UUID, str]:
        return {a.key: a.prompt for a in self.actions if a.key is not None}

    # --- the browsers ---------------------------------------------------------------------

    def browse(self, web: str, n: int, username: str, provider_pk: int) -> None:
        """One user's browser: log in, then their share of the actions at a steady pace."""
        session = requests.Session()
        session.trust_env = False  # 127.0.0.1 only, whatever the environment's proxy says
        login = session.get(f"{web}/login/", timeout=60)
        answer = session.post(
            f"{web}/login/",
            data={"username": username, "password": PASSWORD, **csrf(login.text)},
            timeout=60,
            allow_redirects=False,
        )
        if answer.status_code != 302:
            log(f"user {username} could not log in: HTTP {answer.status_code}")
            return
        mine = [i for i, a in enumerate(self.actions) if a.user == n]
        pace = self.args.duration / max(len(self.actions), 1)
        for i in mine:
            wait = self.t0 + i * pace - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            self.act(session, web, self.actions[i], provider_pk)

    def act(self, session: requests.Session, web: str, action: Action, provider_pk: int) -> None:
        """GET the form, then POST it as rendered (twice for a double click / re-post); a
        failed POST is sent again with the same form, as a user would press the button again."""
        url = (
            f"{web}/videos/{action.source}/remix/"
            if action.kind == "remix"
            else f"{web}/videos/new/"
        )
        for _ in range(5):
            try:
                page = session.get(url, timeout=60)
            except requests.RequestException as exc:
                action.errors.append(f"GET form: {exc!r}")
                continue
            found = KEY_FIELD.search(page.text)
            if page.status_code == 200 and found:
                action.key = uuid.UUID(found[1])
                break
            action.errors.append(f"GET form: HTTP {page.status_code}")
        else:
            return
        fields = {"key": str(action.key), "prompt": action.prompt, **csrf(page.text)}
        if action.kind == "create":
            fields |= {"provider": str(provider_pk), "model": "sora-2", "size": "720x1280"}
            fields |= {"seconds": "4"}
        for _ in range(2 if action.twice else 1):
            self.post(session, url, fields, action)

    def post(
        self, session: requests.Session, url: str, fields: dict[str, str], action: Action
    ) -> None:
        multipart = {name: (None, value) for name, value in fields.items()}
        for _ in range(5):
            action.posts += 1
            try:
                if action.kind == "create":  # enctype="multipart/form-data"
                    answer = session.post(url, files=multipart, timeout=60, allow_redirects=False)
                else:
                    answer = session.post(url, data=fields, timeout=60, allow_redirects=False)
            except requests.RequestException as exc:
                action.errors.append(f"POST: {exc!r}")
                continue
            if answer.status_code == 302:
                return
            action.errors.append(f"POST: HTTP {answer.status_code}")

    # --- the kills ------------------------------------------------------------------------

    def kill_during(self, names: list[str], t0: float) -> None:
        """Every process in `names` SIGKILLed --kills times, spread over the actions, each
        kill waiting (a few seconds at most) for a POST or a download in flight."""
        schedule = [name for _ in range(self.args.kills) for name in names]
        gap = self.args.duration * 0.85 / max(len(schedule), 1)
        for k, name in enumerate(schedule):
            when = t0 + self.args.duration * 0.1 + k * gap
            time.sleep(max(0.0, when - time.monotonic()))
            trigger = "mid-POST" if k % 2 == 0 else "mid-download"
            hit = self.wait_for(trigger, timeout=min(8.0, gap * 0.8))
            sending, partials = sending_rows(), len(partial_files())
            self.procs[name].send_signal(signal.SIGKILL)  # no handler, no finally: a power cut
            self.procs[name].wait(timeout=10)
            self.kills.append(Kill(time.monotonic(), name, trigger, hit, sending, partials))
            log(
                f"SIGKILL {name} ({trigger}{'' if hit else ', not caught'}): "
                f"{sending} row(s) sending, {partials} partial file(s)"
            )
            self.start(name)

    def wait_for(self, trigger: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if trigger == "mid-POST" and sending_rows():
                return True
            if trigger == "mid-download" and any(_size(p) > 0 for p in partial_files()):
                return True
            time.sleep(0.01)
        return False


def sending_rows() -> int:
    from django.db import close_old_connections

    from jobs.models import Video

    close_old_connections()
    return Video.objects.filter(submission=Video.Submission.SENDING).count()


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:  # finished and moved into place meanwhile
        return 0


def csrf(html: str) -> dict[str, str]:
    found = CSRF_FIELD.search(html)
    return {"csrfmiddlewaretoken": found[1]} if found else {}


SCENES = [
    "a lighthouse in a storm, sepia",
    "a fox in the snow, claymation",
    "a neon city at night, 8-bit",
    "a paper boat on a river, watercolour",
    "a drummer in slow motion, noir",
]


def report(
    args: argparse.Namespace,
    run: Run,
    outcome: Reconciliation,
    proxy: dict[str, Any],
    sim: dict[str, Any],
    leftovers: int,
    result: dict[str, Any],
    started: float,
) -> None:
    for problem in outcome.problems[:40]:
        log(f"problem: {problem}")
    posts = sum(a.posts for a in run.actions)
    errors = sum(len(a.errors) for a in run.actions)
    no_key = sum(1 for a in run.actions if a.key is None)
    log(f"web: {len(run.actions)} actions, {posts} form POSTs, {errors} errors, {no_key} no form")
    sim_faults = ", ".join(f"{k}={v}" for k, v in sorted(sim["faults"].items()))
    log(f"simulator: {sim['total_requests']} requests, {sim['faults_injected']} faulted")
    log(f"simulator faults: {sim_faults}")
    proxy_faults = ", ".join(f"{k}={v}" for k, v in sorted(proxy.items()) if k != "rate")
    log(f"proxy: {proxy_faults}")
    for name in sorted({k.target for k in run.kills}):
        mine = [k for k in run.kills if k.target == name]
        hits = ", ".join(
            f"{k.trigger}{'' if k.hit else '(missed)'} sending={k.sending} partials={k.partials}"
            for k in mine
        )
        log(f"kills of {name}: {len(mine)}: {hits}")
    caught = sum(1 for k in run.kills if k.hit)
    db = "postgresql" if is_postgres(args.database_url) else "sqlite"
    print(
        f"soak actions={args.actions} db={db}"
        f" trackers={args.trackers} faults={args.fault_rate:.2f} kills={len(run.kills)}"
        f" kills_caught={caught} {outcome.figures()} partial_left={leftovers}"
        f" unsettled={result['unsettled']} seconds={time.monotonic() - started:.0f}",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
