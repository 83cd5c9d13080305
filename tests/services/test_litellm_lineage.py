"""Lineage on import through LiteLLM: its ids wrap the upstream's, and a remix names its source
by the upstream's raw id. Against the simulator's litellm_ids quirk, over HTTP."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from jobs.models import Provider, Video
from jobs.provider.ids import decode_litellm, encode_litellm
from jobs.services.imports import find_source, import_one, missing_source
from tests.conftest import Simulator
from tests.helpers import import_by_id


@pytest.fixture
def litellm(simulator: Simulator) -> Simulator:
    simulator.configure(quirks=["litellm_ids"])
    return simulator


def source_and_remix(provider: Provider, simulator: Simulator) -> tuple[str, str]:
    source = simulator.seed(1)[0]["id"]
    remix = provider.client().remix(source, "make it snow").id
    return source, remix


def test_a_remix_naming_its_source_by_the_raw_id_is_linked(
    provider: Provider, litellm: Simulator
) -> None:
    source_id, remix_id = source_and_remix(provider, litellm)
    wrapped = decode_litellm(source_id)
    assert wrapped is not None  # the quirk is on: LiteLLM-shaped ids
    source, _ = import_by_id(provider=provider, video_id=source_id)
    remix, created = import_by_id(provider=provider, video_id=remix_id)
    assert created and remix.remixed_from_video_id == wrapped.raw  # as LiteLLM answers it
    assert remix.source == source and remix.kind == Video.Kind.REMIX
    assert source.kind == Video.Kind.CREATE
    assert missing_source(remix) == ""


def test_a_source_imported_after_its_remix_is_linked_to_it(
    provider: Provider, litellm: Simulator
) -> None:
    source_id, remix_id = source_and_remix(provider, litellm)
    remix, _ = import_by_id(provider=provider, video_id=remix_id)
    raw = remix.remixed_from_video_id
    assert remix.source is None
    assert missing_source(remix) == (
        f"Its source video {raw} is not in the dashboard; import it to link them."
    )
    source, _ = import_by_id(provider=provider, video_id=source_id)
    remix.refresh_from_db()
    assert remix.source == source


def test_import_by_id_follows_the_raw_source_id_through_litellm(
    provider: Provider, litellm: Simulator
) -> None:
    source_id, remix_id = source_and_remix(provider, litellm)
    remix, created = import_one(provider=provider, video_id=remix_id)
    assert created and remix.source is not None
    assert remix.source.video_id == source_id  # fetched by its LiteLLM id, and linked


def test_a_source_that_is_gone_is_said_on_the_message_and_the_page(
    provider: Provider, litellm: Simulator, alice_client: Client
) -> None:
    source_id, remix_id = source_and_remix(provider, litellm)
    provider.client().delete(source_id)
    raw = decode_litellm(source_id).raw  # type: ignore[union-attr]
    r = alice_client.post(
        "/import/", {"action": "import", "provider": provider.pk, "video_id": remix_id}, follow=True
    )
    page = r.content.decode()
    remix = Video.objects.get(video_id=remix_id)
    assert remix.source is None and remix.kind == Video.Kind.REMIX
    assert (
        f"Imported as video #{remix.pk}. Its source video {raw} is not in the dashboard; "
        "import it to link them." in page
    )
    assert 'id="missing-source"' in page  # the detail page says it too, with the import link


def test_only_the_video_wrapping_that_raw_id_is_taken(db: None, provider: Provider) -> None:
    def row(video_id: str) -> Video:
        return Video.objects.create(
            provider=provider, video_id=video_id, model="sora-2", prompt="p", size="", seconds=""
        )

    wanted = row(encode_litellm("openai", "sora-2", "video_abc"))
    row(encode_litellm("openai", "sora-2", "video_ABC"))  # LIKE ignores case on SQLite
    row(encode_litellm("openai", "sora-2", "xvideo_abc"))  # ends the same way, another id
    other = Provider.objects.create(name="Other", base_url="http://127.0.0.1:9/v1", api_key_env="X")
    Video.objects.create(
        provider=other,
        video_id=encode_litellm("openai", "sora-2", "video_zzz"),
        model="m",
        prompt="p",
    )
    assert find_source(provider, "video_abc") == wanted
    for model in ("sora-2-pro", "m"):  # whatever the prefix's length, the ending is found
        row(encode_litellm("azure", model, "video_q" + model))
        assert find_source(provider, "video_q" + model) is not None
    assert find_source(provider, "video_zzz") is None  # another provider's
    assert find_source(provider, "video_nothing") is None
    assert find_source(provider, "") is None


def test_kind_is_set_on_import(provider: Provider, simulator: Simulator) -> None:
    source_id = simulator.seed(1)[0]["id"]
    remix_id = provider.client().remix(source_id, "in autumn").id
    remix, _ = import_by_id(provider=provider, video_id=remix_id)
    source = Video.objects.filter(video_id=source_id).first()
    assert source is None and remix.kind == Video.Kind.REMIX and remix.source is None
    other: Any = import_by_id(provider=provider, video_id=source_id)[0]
    assert other.kind == Video.Kind.CREATE
