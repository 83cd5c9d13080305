"""Zip: a 1 GB bulk zip download raises the web server's peak RSS by less than 20 MB.

Ten completed videos at the simulator, each MP4 padded with a ~103 MiB `free` box
(`pad_video_mb`), are imported into a throwaway SQLite file and archived by the dashboard's own
code (jobs.archive), so about 1 GiB of real, verified archives is on disk. A real server
(`manage.py runserver`, threaded, no reloader) serves the app. The driver logs in as a user
would (a session, the CSRF cookie and token from the page), downloads a small zip of one video
to warm every code path, reads the server's VmHWM (peak RSS), then POSTs the bulk bar's
"Download zip" for all ten and writes the answer to a file as it arrives. VmHWM is read again
afterwards: the difference is what streaming a 1 GB zip costs the server in memory. The zip is
then opened with zipfile: every entry present under its download name, sizes equal to the
archived files, and every CRC checked.

    .venv/bin/python bench/zip_memory.py
"""

from __future__ import annotations

import argparse
import http.cookiejar
import re
import sys
import time
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jobs.models import Provider
    from simulator.testing import Simulator

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script

from bench._harness import (  # noqa: E402 (the line above makes `bench` importable)
    DUMMY_TASKS,
    PERF_KEY_ENV,
    Workspace,
    goal,
    import_video,
    log,
    make_provider,
    proc_status_kb,
    session_cookie,
)

VIDEOS = 10
PAD_MB = 103  # 10 × (103 MiB + the clip and its stills) ≈ 1.01 GiB
GOAL_MB = 20
CHUNK = 1 << 20  # the driver reads the answer 1 MiB at a time


def archive_all(sim: Simulator, provider: Provider, count: int) -> list[int]:
    """Seeded, imported and archived here: the files a user's zip is made of."""
    from jobs.archive import archive_assets
    from jobs.models import Video

    pks = []
    for item in sim.seed(count):
        video = import_video(provider, item["id"])
        archive_assets(Video.objects.select_related("provider").get(pk=video.pk))
        video.refresh_from_db()
        if not video.playable:
            raise RuntimeError(f"video {video.pk} did not archive: {video.last_error}")
        pks.append(video.pk)
    return pks


def opener(web: str, session: str) -> urllib.request.OpenerDirector:
    """A logged-in client with its own cookie jar (session, then Django's CSRF cookie)."""
    jar = http.cookiejar.CookieJar()
    host = urllib.parse.urlsplit(web).hostname or "127.0.0.1"
    jar.set_cookie(
        http.cookiejar.Cookie(
            0, "sessionid", session, None, False, host, False, False, "/", True, False,
            None, False, None, None, {},
        )
    )  # fmt: skip
    return urllib.request.build_opener(
        urllib.request.ProxyHandler({}), urllib.request.HTTPCookieProcessor(jar)
    )


def download_zip(
    client: urllib.request.OpenerDirector, web: str, ids: list[int], out: Path
) -> dict[str, Any]:
    """GET the list (CSRF token and cookie), then POST the bulk "Download zip" for `ids`."""
    with client.open(f"{web}/", timeout=60) as page:
        html = page.read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    if token is None:
        raise RuntimeError("no CSRF token on the jobs list: not logged in?")
    form = [("csrfmiddlewaretoken", token[1]), ("action", "zip")] + [("ids", str(i)) for i in ids]
    request = urllib.request.Request(
        f"{web}/bulk/", data=urllib.parse.urlencode(form).encode(), method="POST"
    )
    started = time.monotonic()
    first_byte = None
    written = 0
    with client.open(request, timeout=600) as response, out.open("wb") as sink:
        status, length = response.status, int(response.headers.get("Content-Length", "-1"))
        kind = response.headers.get("Content-Type", "")
        while chunk := response.read(CHUNK):
            if first_byte is None:
                first_byte = time.monotonic() - started
            sink.write(chunk)
            written += len(chunk)
    seconds = time.monotonic() - started
    return {
        "status": status,
        "type": kind,
        "length": length,
        "bytes": written,
        "seconds": seconds,
        "first_byte": first_byte or seconds,
    }


def check_entries(path: Path, pks: list[int]) -> tuple[bool, str]:
    """Every archived file of every video, under its download name, whole, CRC intact."""
    from django.core.files.storage import default_storage

    from jobs.lib.names import download_name
    from jobs.models import Video

    expected: dict[str, int] = {}
    for video in Video.objects.filter(pk__in=pks):
        for f in (video.video_file, video.thumbnail_file, video.spritesheet_file):
            if f:
                size = Path(default_storage.path(str(f.name))).stat().st_size
                expected[download_name(video.pk, video.prompt, str(f.name))] = size
    with zipfile.ZipFile(path) as archive:
        found = {info.filename: info.file_size for info in archive.infolist()}
        bad = archive.testzip()  # reads every entry and checks its CRC
    if found != expected:
        return False, f"entries differ: {sorted(set(found) ^ set(expected))[:5]}"
    if bad is not None:
        return False, f"CRC error in {bad}"
    return True, f"{len(found)} entries, sizes and CRCs as archived"


def archived_bytes(pks: list[int]) -> int:
    from django.core.files.storage import default_storage

    from jobs.models import Video

    total = 0
    for video in Video.objects.filter(pk__in=pks):
        for f in (video.video_file, video.thumbnail_file, video.spritesheet_file):
            if f:
                total += Path(default_storage.path(str(f.name))).stat().st_size
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    with Workspace("zip", keep=args.keep) as ws:
        sim = ws.simulator("--speed", "40", "--pad-video-mb", "0")
        env = ws.django(tasks_backend=DUMMY_TASKS, api_key_env=PERF_KEY_ENV)
        provider = make_provider(sim.base_url, name="Simulator", api_key_env=PERF_KEY_ENV)
        from django.contrib.auth import get_user_model

        user = get_user_model().objects.create_user("alice", password=None)
        (warm,) = archive_all(sim, provider, 1)  # small: the warm-up zip
        sim.configure(pad_video_mb=PAD_MB)
        log(f"archiving {VIDEOS} videos padded to {PAD_MB} MiB each…")
        started = time.monotonic()
        big = archive_all(sim, provider, VIDEOS)
        on_disk = archived_bytes(big)
        log(f"archived {on_disk / 2**30:.2f} GiB in {time.monotonic() - started:.0f} s")

        proc, web = ws.web(env)
        client = opener(web, session_cookie(user))
        warm_zip = download_zip(client, web, [warm], ws.dir / "warm.zip")
        if warm_zip["status"] != 200:
            raise RuntimeError(f"warm-up zip answered {warm_zip['status']}")
        baseline_hwm = proc_status_kb(proc.pid, "VmHWM")
        baseline_rss = proc_status_kb(proc.pid, "VmRSS")
        figures = download_zip(client, web, big, ws.dir / "big.zip")
        after_hwm = proc_status_kb(proc.pid, "VmHWM")
        growth = (after_hwm - baseline_hwm) / 1024
        ok, words = check_entries(ws.dir / "big.zip", big)
        size_gib = figures["bytes"] / 2**30
        print(
            f"zip of {len(big)} videos: {figures['bytes']:,} bytes ({size_gib:.2f} GiB), "
            f"HTTP {figures['status']} {figures['type']}, Content-Length {figures['length']:,}"
        )
        print(
            f"first byte after {figures['first_byte'] * 1000:.0f} ms; {figures['seconds']:.1f} s "
            f"in all ({figures['bytes'] / 2**20 / figures['seconds']:.0f} MiB/s)"
        )
        print(
            f"server RSS {baseline_rss / 1024:.1f} MB before; peak RSS (VmHWM) "
            f"{baseline_hwm / 1024:.1f} MB before, {after_hwm / 1024:.1f} MB after "
            f"(growth {growth:+.1f} MB)"
        )
        print(f"entries: {words}")
        met = (
            growth < GOAL_MB
            and ok
            and figures["status"] == 200
            and figures["bytes"] == figures["length"]
            and figures["bytes"] >= 2**30
        )
        return goal(
            f"ZIP rss_growth={growth:.1f}MB for {size_gib:.2f}GiB goal: rss_growth<{GOAL_MB}MB",
            met,
        )


if __name__ == "__main__":
    sys.exit(main())
