"""Start simulator + web server + task worker + tracker + notification worker; Ctrl-C stops all."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from types import FrameType
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from jobs.management.commands.seed_demo import report
from jobs.services.demo import seed_demo, seed_openrouter_demo
from remixsite.keyfile import DEFAULT_PATH as DEMO_KEY_FILE
from remixsite.keyfile import ensure_secret_key


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


class Command(BaseCommand):
    help = "Run the whole demo: simulator, web, db_worker, track_videos, deliver_notifications."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", 8000)))
        parser.add_argument("--sim-port", type=int, default=int(os.environ.get("SIM_PORT", 8001)))
        parser.add_argument("--sim-speed", default=os.environ.get("SIM_SPEED", "1"))
        parser.add_argument("--samples", default=os.environ.get("SIM_SAMPLES", "3"))
        parser.add_argument(
            "--openrouter",
            action="store_true",
            default=os.environ.get("OPENROUTER_DEMO", "") not in ("", "0"),
            help="also run the simulator in OpenRouter's dialect, as a second provider "
            "(OPENROUTER_DEMO=1; its port is OPENROUTER_SIM_PORT, default the simulator's + 1)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        # SIGTERM (e.g. from a process manager) stops the children just like Ctrl-C does. SIGINT
        # is set too: a shell without job control starts background commands with it ignored.
        signal.signal(signal.SIGTERM, _interrupt)
        signal.signal(signal.SIGINT, _interrupt)
        port, sim_port = options["port"], options["sim_port"]
        or_port = int(os.environ.get("OPENROUTER_SIM_PORT", sim_port + 1))
        for p in (port, sim_port, *([or_port] if options["openrouter"] else [])):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", p)) == 0:
                    raise CommandError(
                        f"port {p} is in use; set PORT=, SIM_PORT= or OPENROUTER_SIM_PORT= to "
                        "another"
                    )
        env = self.demo_environment()
        os.environ.setdefault(settings.PROVIDER_DEFAULT_API_KEY_ENV, "sk-local-simulator")
        py = sys.executable
        # DEBUG is off in the children: WhiteNoise serves the manifest's files, collected here.
        subprocess.run(
            [py, str(settings.BASE_DIR / "manage.py"), "collectstatic", "--noinput", "-v0"],
            env=env,
            check=True,
        )
        data_dir = os.environ.get("SIM_DATA_DIR") or str(settings.BASE_DIR / "var" / "simulator")
        simulator = [py, "-m", "simulator", "--host", "127.0.0.1", "--speed", options["sim_speed"]]
        procs = [
            subprocess.Popen(
                [
                    *simulator,
                    *("--port", str(sim_port), "--data-dir", data_dir),
                    *("--samples", options["samples"]),
                ],
                env=env,
            )
        ]
        if options["openrouter"]:  # OpenRouter has no list to import samples from
            procs.append(
                subprocess.Popen(
                    [
                        *simulator,
                        *("--port", str(or_port), "--data-dir", f"{data_dir}-openrouter"),
                        *("--dialect", "openrouter"),
                    ],
                    env=env,
                )
            )
        try:
            self.wait_for(sim_port)
            demo = seed_demo(
                username=os.environ.get("DEMO_USERNAME", "admin"),
                base_url=f"http://127.0.0.1:{sim_port}/v1",
            )
            report(demo, self.stdout, self.stderr)
            if options["openrouter"]:
                self.wait_for(or_port)
                second, problem = seed_openrouter_demo(
                    base_url=f"http://127.0.0.1:{or_port}/api/v1"
                )
                self.stdout.write(f"provider “{second}” at {second.base_url}")
                if problem:
                    self.stderr.write(problem)
            login = f"login: {demo.username} / {demo.password}"
            manage = [py, str(settings.BASE_DIR / "manage.py")]
            procs += [
                subprocess.Popen(
                    [*manage, "runserver", f"127.0.0.1:{port}", "--noreload"], env=env
                ),
                subprocess.Popen(
                    [*manage, "db_worker", "--no-reload", "--interval", "0.5"], env=env
                ),
                subprocess.Popen([*manage, "track_videos"], env=env),
                subprocess.Popen([*manage, "deliver_notifications"], env=env),
            ]
            self.wait_for(port)
            also = f", OpenRouter's dialect on :{or_port}" if options["openrouter"] else ""
            self.stdout.write(
                self.style.SUCCESS(
                    f"\nRemix dashboard: http://127.0.0.1:{port}/   {login}\n"
                    f"(simulator on :{sim_port}{also}, admin at /admin/; Ctrl-C stops "
                    "everything)\n"
                )
            )
            while all(p.poll() is None for p in procs):
                time.sleep(0.5)
            raise CommandError("a process exited; stopping the others")
        except KeyboardInterrupt:
            self.stdout.write("stopping…")
        finally:
            for p in procs:
                if p.poll() is None:
                    p.send_signal(signal.SIGTERM)
            for p in procs:
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()

    def demo_environment(self) -> dict[str, str]:
        """The children's environment: as in production (DEBUG off, so the site's own error
        pages), keyed by var/secret-key unless a SECRET_KEY is given, on plain-HTTP cookies."""
        if ensure_secret_key():
            self.stdout.write(f"Created {DEMO_KEY_FILE} (mode 600): the demo's SECRET_KEY")
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "DEBUG": os.environ.get("DEMO_DEBUG", "0")}
        env.setdefault("SECURE_COOKIES", "0")  # http://127.0.0.1: a Secure cookie is never sent
        env.setdefault(settings.PROVIDER_DEFAULT_API_KEY_ENV, "sk-local-simulator")
        return env

    @staticmethod
    def wait_for(port: int, seconds: float = 30) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    return
            time.sleep(0.1)
        raise CommandError(f"nothing answered on port {port} within {seconds:.0f} s")
