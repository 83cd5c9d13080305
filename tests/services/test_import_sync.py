"""Import by id and sync from the provider: adopting jobs made elsewhere, idempotently."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from openai import OpenAI
from pytest_django import Settings

from jobs.models import Provider, Video
from jobs.services.imports import sync_provider
from tests.conftest import Simulator
from tests.helpers import import_by_id

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the SDK's Videos API


@pytest.fixture(autouse=True)
def no_archiving(settings: Settings) -> None:
    """Imports queue archiving; these tests are about the rows, so nothing runs the queue."""
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}}


def sdk_script(sim: Simulator) -> tuple[str, str, str]:
    """What a user's own script does with the official SDK: an original, a remix, a remix of it."""
    client = OpenAI(base_url=sim.base_url, api_key="sk-test", max_retries=0)
    original = client.videos.create_and_poll(prompt="a paper boat", seconds="4")
    remix = client.videos.remix(original.id, prompt="a paper boat in the rain")
    client.videos.poll(remix.id)
    grandchild = client.videos.remix(remix.id, prompt="a paper boat in the rain at night")
    return original.id, remix.id, grandchild.id


@contextmanager
def fake_gateway(handle: Callable[[BaseHTTPRequestHandler], None]) -> Iterator[str]:
    """A local HTTP server answering every GET with `handle`; yields its /v1 base URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (stdlib name)
            handle(self)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


def answer(request: BaseHTTPRequestHandler, status: int, body: object) -> None:
    data = json.dumps(body).encode()
    request.send_response(status)
    request.send_header("Content-Type", "application/json")
    request.send_header("Content-Length", str(len(data)))
    request.end_headers()
    request.wfile.write(data)


class TestImportById:
    def test_a_job_made_by_a_script_is_adopted_with_its_sources(
        self, alice_client, provider, simulator
    ) -> None:
        original, remix, grandchild = sdk_script(simulator)
        r = alice_client.post(
            "/import/", {"action": "import", "provider": provider.pk, "video_id": grandchild}
        )
        assert r.status_code == 302
        video = Video.objects.get(video_id=grandchild)
        assert r["Location"] == video.get_absolute_url()
        assert video.submission == Video.Submission.IMPORTED and video.owner is None
        # The chain above it came along, so the family view is complete.
        assert video.source is not None
        assert video.source.video_id == remix
        assert video.source.source is not None
        assert video.source.source.video_id == original
        assert video.source.source.source is None

    def test_importing_twice_creates_nothing_new(self, alice_client, provider, simulator) -> None:
        remote = simulator.seed(1)[0]
        data = {"action": "import", "provider": provider.pk, "video_id": remote["id"]}
        alice_client.post("/import/", data)
        r = alice_client.post("/import/", data, follow=True)
        assert b"Already here" in r.content
        assert Video.objects.count() == 1

    def test_an_unknown_id_is_explained(self, alice_client, provider, simulator) -> None:
        r = alice_client.post(
            "/import/", {"action": "import", "provider": provider.pk, "video_id": "video_nope"}
        )
        assert r.status_code == 400
        assert "has no video with the id video_nope" in r.content.decode()
        assert Video.objects.count() == 0

    def test_the_page_offers_import_to_everyone_and_sync_to_staff(
        self, client, alice, staff, provider
    ) -> None:
        client.force_login(alice)
        body = client.get("/import/").content.decode()
        assert 'id="import-form"' in body and 'id="sync-form"' not in body
        assert "Only staff can sync" in body
        client.force_login(staff)
        assert 'id="sync-form"' in client.get("/import/").content.decode()


class TestSync:
    def test_it_adopts_everything_links_remixes_and_is_idempotent(
        self, client, staff, provider, simulator
    ) -> None:
        original, remix, grandchild = sdk_script(simulator)
        simulator.seed(2)
        client.force_login(staff)
        r = client.post("/import/", {"action": "sync", "provider": provider.pk}, follow=True)
        assert b"5 jobs listed, 5 new imported" in r.content
        by_id = {v.video_id: v for v in Video.objects.all()}
        assert by_id[remix].source == by_id[original]
        assert by_id[grandchild].source == by_id[remix]
        assert all(v.submission == Video.Submission.IMPORTED for v in by_id.values())
        r = client.post("/import/", {"action": "sync", "provider": provider.pk}, follow=True)
        assert b"5 jobs listed, 0 new imported" in r.content
        assert Video.objects.count() == 5

    def test_it_pages_with_after_and_limit(self, provider, simulator) -> None:
        simulator.seed(7)
        before = simulator.stats()["requests"].get("GET /v1/videos", 0)
        result = sync_provider(provider=provider, limit=3)
        assert (result.seen, result.new) == (7, 7)
        assert simulator.stats()["requests"]["GET /v1/videos"] - before == 3  # 3 + 3 + 1

    def test_a_remix_listed_before_its_source_is_linked_later(self, provider, simulator) -> None:
        original, remix, _ = sdk_script(simulator)
        import_by_id(provider=provider, video_id=remix)  # the source is not here yet
        assert Video.objects.get(video_id=remix).source is None
        sync_provider(provider=provider)
        linked = Video.objects.get(video_id=remix).source
        assert linked is not None
        assert linked.video_id == original

    def test_non_staff_cannot_sync(self, alice_client, provider) -> None:
        r = alice_client.post("/import/", {"action": "sync", "provider": provider.pk})
        assert r.status_code == 403

    def test_a_provider_that_cannot_list_gets_a_clear_message(
        self, client, staff, provider, simulator
    ) -> None:
        provider.can_list = False
        provider.save()
        client.force_login(staff)
        r = client.post("/import/", {"action": "sync", "provider": provider.pk})
        assert r.status_code == 400
        body = r.content.decode()
        assert "cannot list its jobs" in body and "import jobs one at a time by id" in body
        assert simulator.stats()["requests"].get("GET /v1/videos", 0) == 0

    def test_a_gateway_answering_400_to_list_gets_a_clear_message(self, db, monkeypatch) -> None:
        def handle(request: BaseHTTPRequestHandler) -> None:
            answer(
                request,
                400,
                {
                    "error": {
                        "message": "Missing model in request: LiteLLM needs a routing hint",
                        "type": "invalid_request_error",
                        "param": "model",
                        "code": None,
                    }
                },
            )

        with fake_gateway(handle) as base_url:
            gateway = Provider.objects.create(
                name="LiteLLM", base_url=base_url, api_key_env="SIMULATOR_API_KEY"
            )
            with pytest.raises(ValidationError) as exc:
                sync_provider(provider=gateway)
        text = " ".join(exc.value.messages)
        assert "refused to list its jobs (HTTP 400" in text
        assert "Gateways such as LiteLLM need a routing hint" in text


class TestSyncCommand:
    def test_it_syncs_every_listing_provider(self, provider, simulator, capsys) -> None:
        simulator.seed(2)
        call_command("sync_videos")
        call_command("sync_videos", "--provider", "Sim")
        out = capsys.readouterr().out
        assert "Sim: 2 jobs listed, 2 new" in out and "Sim: 2 jobs listed, 0 new" in out
        assert Video.objects.count() == 2

    def test_an_unknown_provider_name_fails(self, provider) -> None:
        with pytest.raises(CommandError, match="No provider named “Nope” \\(configured: Sim\\)"):
            call_command("sync_videos", "--provider", "Nope")

    def test_a_provider_that_cannot_list_fails_loudly_when_named(self, provider, capsys) -> None:
        provider.can_list = False
        provider.save()
        call_command("sync_videos")  # skipped when not named: nothing to do is not an error
        assert "nothing to sync" in capsys.readouterr().out
        with pytest.raises(CommandError, match="1 of 1 providers could not be synced"):
            call_command("sync_videos", "--provider", "Sim")
        assert "cannot list its jobs" in capsys.readouterr().err
