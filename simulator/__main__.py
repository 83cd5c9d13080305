"""`python -m simulator`: a local, offline fake of the OpenAI Videos API (Sora 2 job API)."""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import tempfile
import textwrap
from pathlib import Path
from types import FrameType

from . import api, content, control, openrouter
from .app import App
from .config import DIALECTS, FAULT_KINDS, ConfigError, Settings, new_webhook_secret, parse_faults
from .http import SimServer
from .lifecycle import MODELS
from .media import FPS, SPRITE_COLUMNS, SPRITE_SCALE
from .quirks import ACCENTS, QUIRKS, parse_quirks
from .store import Store

QUIRK_LINES = "\n".join(
    textwrap.fill(f"{name}: {words}", 90, initial_indent="  ", subsequent_indent="      ")
    for name, words in QUIRKS.items()
)
ACCENT_LINES = "\n".join(f"  {name} = {', '.join(names)}" for name, names in ACCENTS.items())

EPILOG = f"""\
API (under /v1, bearer auth): POST /videos (multipart or JSON), GET /videos/{{id}},
GET /videos (after, limit 0..100, order asc|desc), DELETE /videos/{{id}},
GET /videos/{{id}}/content?variant=video|thumbnail|spritesheet, POST /videos/{{id}}/remix,
POST /videos/edits {{"prompt", "video": {{"id"}}}}, POST /videos/extensions {{"prompt",
"seconds" (of the new segment: 4, 8, 12, 16, 20), "video": {{"id"}}}} (the result's seconds is
the source's plus the new part), GET /models. Remix, edit and extension need a completed
source, keep its model and size, and name it in remixed_from_video_id.
Models: {", ".join(MODELS)}.
The Idempotency-Key header on every POST that creates a job returns the stored job
(current state) instead of creating a second one (unless --ignore-idempotency).
Every other method or path answers with the JSON error envelope (405 with Allow, or 404).

Gateway quirks (--quirks, or "quirks" in POST /_sim/config; reset restores the start-up set):
{QUIRK_LINES}
Accents (--accent, presets of quirks):
{ACCENT_LINES}

Lifecycle: a job takes 5 s per clip second / speed (queued for the first 10 %, then
in_progress with progress 0..99, then completed), fixed when the job is created.

Media (generated on first download, cached in the data dir): video = H.264 + AAC MP4 of
exactly the job's size and length at --fps frames a second (default {FPS}); thumbnail =
full-size WebP of the middle frame; spritesheet = JPEG grid, one tile per clip second at
1/{SPRITE_SCALE} size, {SPRITE_COLUMNS} tiles per row.

Fault kinds: {", ".join(FAULT_KINDS)}
  429: error envelope + Retry-After / retry-after-ms; 500, 503: error envelope;
  502: an HTML page; timeout: stall --hang-seconds, then answer; drop: close the
  connection with no response; malformed: 200 with truncated JSON; accept_then_drop /
  accept_then_timeout (POSTs that create a job only): create the job, then drop / stall;
  create_then_500 (POSTs that create a job only): create the job, then answer 500; truncate
  (content downloads only): half the body, no Content-Length, then a clean close.

Control endpoints (no auth, JSON, never faulted):
  GET|POST /_sim/config            read / patch settings (option names with underscores)
  POST /_sim/faults/next           {{"fault": "429", "count": 2, "method": "GET",
                                    "path": "/v1/videos"}} scripted faults, used first
  GET /_sim/faults, DELETE /_sim/faults   pending scripted faults / clear them
  POST /_sim/videos/{{id}}/expire    make a completed video's assets expire now
  POST /_sim/seed                  {{"count": 3}} completed sample videos, returned as a list
  GET /_sim/stats                  request counts per route and per video, jobs_created,
                                   faults_injected, webhook deliveries
  POST /_sim/reset                 forget every video, key, stat and scripted fault, and
                                   go back to the start-up quirks
Files (no auth, never faulted): GET /files/{{id}}.mp4, the finished MP4 (quirk content_url)
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m simulator",
        description="Fake OpenAI Videos API (Sora 2 jobs) for local development, tests and "
        "benchmarks. Offline; state in SQLite under --data-dir.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    add("--port", type=int, default=8001, help="port to listen on, 0 = any free (default 8001)")
    add(
        "--speed",
        type=float,
        default=1.0,
        help="divide every duration (render time, expiry) by N (default 1: a 4 s clip takes ~20 s)",
    )
    add(
        "--api-key",
        default=None,
        help="bearer key required on /v1; without it any non-empty key is accepted",
    )
    add(
        "--data-dir",
        type=Path,
        default=None,
        help="where jobs (SQLite) and generated media live; a restart with the same dir keeps "
        "every job (default: a temporary dir removed at exit)",
    )
    add(
        "--expires-after",
        type=float,
        default=3600.0,
        metavar="S",
        help="assets expire S seconds after completion, divided by speed (default 3600)",
    )
    add(
        "--samples",
        type=int,
        default=0,
        metavar="N",
        help="create N completed sample videos at start when the store is empty (default 0)",
    )
    add(
        "--fault-rate",
        type=float,
        default=0.0,
        metavar="F",
        help="probability (0..1) that an API request gets an injected fault (default 0)",
    )
    add(
        "--faults",
        default="all",
        metavar="LIST",
        help="comma list of fault kinds to draw from (default: all kinds, listed below)",
    )
    add(
        "--retry-after",
        type=float,
        default=1.0,
        metavar="S",
        help="Retry-After seconds sent with injected 429s (default 1)",
    )
    add(
        "--hang-seconds",
        type=float,
        default=40.0,
        metavar="S",
        help="how long a timeout fault stalls before answering (default 40)",
    )
    add(
        "--latency",
        type=float,
        default=0.0,
        metavar="S",
        help="seconds every API answer takes, like a provider far away (default 0)",
    )
    add(
        "--fail-rate",
        type=float,
        default=0.0,
        metavar="F",
        help="probability that a new job ends failed (default 0)",
    )
    add(
        "--slow-rate",
        type=float,
        default=0.0,
        metavar="F",
        help="probability that a new job is --slow-factor times slower (default 0)",
    )
    add(
        "--slow-factor",
        type=float,
        default=4.0,
        metavar="X",
        help="how much slower a slow job is (default 4)",
    )
    add(
        "--duration-jitter",
        type=float,
        default=0.0,
        metavar="F",
        help="render times vary by up to F either way, e.g. 0.1: +-10%% (default 0)",
    )
    add(
        "--webhook-url",
        default=None,
        metavar="URL",
        help="POST signed video.completed / video.failed events here (Standard Webhooks)",
    )
    add(
        "--webhook-secret",
        default=None,
        metavar="whsec_...",
        help="signing secret (default: a random whsec_ secret, shown by GET /_sim/config)",
    )
    add(
        "--webhook-duplicates",
        action="store_true",
        help="deliver every event twice (same webhook-id)",
    )
    add(
        "--webhook-shuffle",
        action="store_true",
        help="hold events up to 1.5 s and deliver them in random order",
    )
    add(
        "--webhook-delay",
        type=float,
        default=0.0,
        metavar="S",
        help="delay every delivery by S seconds (default 0)",
    )
    add(
        "--fps",
        type=int,
        default=FPS,
        help=f"frame rate of generated videos, 1..60 (default {FPS}; fewer frames encode "
        "faster, which the test suite uses)",
    )
    add(
        "--pad-video-mb",
        type=float,
        default=0.0,
        metavar="N",
        help="append an MP4 'free' box of N MiB to each video (large assets for memory "
        "benchmarks; fixed per video at its first download) (default 0)",
    )
    add(
        "--ignore-idempotency",
        action="store_true",
        help="ignore Idempotency-Key: every POST creates a new job, like a provider that does "
        "not support the header",
    )
    add(
        "--allow-cancel",
        action="store_true",
        help="DELETE of a queued or in-progress job cancels it (status cancelled) instead of "
        "refusing, like a provider that can cancel",
    )
    add(
        "--quirks",
        default="",
        metavar="LIST",
        help="comma list of gateway quirks to reproduce (listed below; default none)",
    )
    add(
        "--accent",
        choices=tuple(ACCENTS),
        default=None,
        help="answer like this gateway: adds its preset of quirks (listed below)",
    )
    add(
        "--dialect",
        choices=DIALECTS,
        default="openai",
        help="openai (default): the Videos API above under /v1; openrouter: OpenRouter's video "
        "API under /api/v1 instead (POST /videos answering 202, GET /videos/{id}, "
        "GET /videos/{id}/content?index=0, GET /videos/models; no list, remix or delete; "
        "video.generation.* webhooks signed X-OpenRouter-Signature), as in "
        "simulator/openrouter.py",
    )
    add("--verbose", action="store_true", help="log one line per request to stderr")
    return parser


def settings_from(args: argparse.Namespace) -> Settings:
    settings = Settings()
    patch = {
        name: getattr(args, name)
        for name in (
            "speed",
            "api_key",
            "expires_after",
            "samples",
            "fault_rate",
            "retry_after",
            "hang_seconds",
            "latency",
            "fail_rate",
            "slow_rate",
            "slow_factor",
            "duration_jitter",
            "webhook_url",
            "webhook_secret",
            "webhook_duplicates",
            "webhook_shuffle",
            "webhook_delay",
            "pad_video_mb",
            "fps",
            "ignore_idempotency",
            "allow_cancel",
        )
    }
    patch["faults"] = parse_faults(args.faults)
    try:
        patch["quirks"] = parse_quirks([*args.quirks.split(","), args.accent or ""])
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    settings.update(patch)
    if settings.webhook_secret is None:
        settings.webhook_secret = new_webhook_secret()
    return settings


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)  # leaves serve_forever so the finally block cleans up


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = settings_from(args)
    except ConfigError as exc:
        parser.error(str(exc))
    temporary = args.data_dir is None
    data_dir = Path(tempfile.mkdtemp(prefix="sora-sim-")) if temporary else args.data_dir
    store = Store(data_dir)
    app = App(settings, store, verbose=args.verbose, dialect=args.dialect)
    try:
        mounts = {"/_sim": control.handle, "/v1": api.handle, "/files": content.serve_file}
        if args.dialect == "openrouter":  # instead of /v1, not beside it
            mounts = {"/_sim": control.handle, openrouter.PREFIX: openrouter.handle}
        server = SimServer((args.host, args.port), app, mounts)
    except OSError as exc:
        print(f"simulator: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        store.close()
        if temporary:
            shutil.rmtree(data_dir, ignore_errors=True)
        return 1
    # Everything from here on sits inside the try: a SIGTERM that arrives right after the
    # URL line is printed must still run the cleanup.
    signal.signal(signal.SIGTERM, _terminate)
    try:
        if settings.samples and store.count() == 0:
            store.seed(settings.samples, settings)
        app.webhooks.start()
        host, port = args.host, server.server_address[1]  # the real port when --port 0
        prefix = openrouter.PREFIX if args.dialect == "openrouter" else "/v1"
        print(
            f"Sora simulator: http://{host}:{port}{prefix} (data dir {data_dir}, speed "
            f"{settings.speed:g})",
            flush=True,
        )
        server.serve_forever(poll_interval=0.25)
    except KeyboardInterrupt:
        pass
    finally:
        app.webhooks.stop()
        server.server_close()
        store.close()
        if temporary:
            shutil.rmtree(data_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
