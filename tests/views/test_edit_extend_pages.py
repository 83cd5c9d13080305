"""The edit and extend pages, through the real forms: offered only where the provider can,
refused in words where it cannot, recorded like a remix, and labelled in the lineage."""

from __future__ import annotations

import re
import uuid
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from jobs.models import Provider, Video
from jobs.services.demo import SORA_PRICES
from jobs.services.submit import submit_edit, submit_extension, submit_remix


@pytest.fixture(autouse=True)
def no_worker(settings: Any) -> None:
    """What the pages record is under test here; sending it is tests/services' business."""
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}}


@pytest.fixture
def deriving(provider: Provider) -> Provider:
    provider.can_edit = provider.can_extend = True
    provider.save()
    return provider


def form_key(body: str) -> str:
    """The key the page minted into its form, as a browser would send it back."""
    found = re.search(r'name="key" value="([0-9a-f-]{36})"', body)
    assert found, "the form has no key"
    return found.group(1)


def price(video: Video) -> Decimal:
    return Decimal(SORA_PRICES[(video.model, video.size)])


class TestDetailPage:
    def test_edit_and_extend_are_offered_where_the_provider_can(
        self, alice_client: Client, deriving: Provider, completed: Video
    ) -> None:
        body = alice_client.get(completed.get_absolute_url()).content.decode()
        assert f'href="{reverse("jobs:edit", args=[completed.pk])}"' in body
        assert f'href="{reverse("jobs:extend", args=[completed.pk])}"' in body
        assert "does not offer" not in body

    def test_elsewhere_the_refusal_is_said_in_words(
        self, alice_client: Client, completed: Video
    ) -> None:
        body = alice_client.get(completed.get_absolute_url()).content.decode()
        assert "The provider “Sim” does not offer edits." in body
        assert "The provider “Sim” does not offer extensions." in body
        assert reverse("jobs:edit", args=[completed.pk]) not in body
        assert reverse("jobs:extend", args=[completed.pk]) not in body

    def test_a_video_still_running_offers_neither(
        self, alice_client: Client, deriving: Provider, completed: Video
    ) -> None:
        Video.objects.filter(pk=completed.pk).update(status=Video.Status.IN_PROGRESS)
        body = alice_client.get(completed.get_absolute_url()).content.decode()
        assert reverse("jobs:edit", args=[completed.pk]) not in body
        assert "does not offer edits" not in body


class TestEditForm:
    def test_the_owner_submits_an_edit_through_the_form(
        self, alice_client: Client, alice: User, deriving: Provider, completed: Video
    ) -> None:
        url = reverse("jobs:edit", args=[completed.pk])
        page = alice_client.get(url)
        body = page.content.decode()
        assert page.status_code == 200 and f"<code>{completed.video_id}</code>" in body
        cost = price(completed) * int(completed.seconds)
        assert f"${cost:.2f}" in body
        r = alice_client.post(url, {"key": form_key(body), "prompt": "make the sky purple"})
        assert r.status_code == 302
        video = Video.objects.get(prompt="make the sky purple")
        assert r["Location"] == f"{reverse('jobs:list')}#video-{video.pk}"
        assert (video.kind, video.source, video.owner) == (Video.Kind.EDIT, completed, alice)
        assert video.remixed_from_video_id == completed.video_id
        assert (video.seconds, video.added_seconds, video.cost_estimate) == (
            completed.seconds,
            "",
            cost,
        )
        assert b"Edit recorded" in alice_client.get(r["Location"]).content

    def test_a_double_submitted_form_records_one_edit(
        self, alice_client: Client, deriving: Provider, completed: Video
    ) -> None:
        url = reverse("jobs:edit", args=[completed.pk])
        data = {"key": form_key(alice_client.get(url).content.decode()), "prompt": "twice"}
        assert alice_client.post(url, data).status_code == 302
        assert alice_client.post(url, data).status_code == 302
        assert Video.objects.filter(prompt="twice").count() == 1

    def test_an_empty_prompt_comes_back_in_words(
        self, alice_client: Client, deriving: Provider, completed: Video
    ) -> None:
        url = reverse("jobs:edit", args=[completed.pk])
        r = alice_client.post(url, {"key": str(uuid.uuid4()), "prompt": ""})
        assert r.status_code == 400 and b"Write a prompt: it cannot be empty." in r.content
        assert Video.objects.count() == 1

    def test_a_provider_without_edits_refuses_in_words(
        self, alice_client: Client, completed: Video
    ) -> None:
        url = reverse("jobs:edit", args=[completed.pk])
        page = alice_client.get(url)
        assert "The provider “Sim” does not offer edits." in page.content.decode()
        assert b'id="derive-form"' not in page.content
        r = alice_client.post(url, {"key": str(uuid.uuid4()), "prompt": "sneak it in"})
        assert r.status_code == 400
        assert "The provider “Sim” does not offer edits." in r.content.decode()
        assert Video.objects.count() == 1

    def test_a_source_still_running_cannot_be_edited(
        self, alice_client: Client, deriving: Provider, completed: Video
    ) -> None:
        Video.objects.filter(pk=completed.pk).update(status=Video.Status.IN_PROGRESS)
        url = reverse("jobs:edit", args=[completed.pk])
        assert b"Only a completed video can be edited." in alice_client.get(url).content
        r = alice_client.post(url, {"key": str(uuid.uuid4()), "prompt": "too soon"})
        assert r.status_code == 400 and Video.objects.count() == 1


class TestExtendForm:
    def test_the_lengths_come_from_the_catalog_with_their_cost(
        self, alice_client: Client, deriving: Provider, completed: Video
    ) -> None:
        body = alice_client.get(reverse("jobs:extend", args=[completed.pk])).content.decode()
        options = re.findall(r'<option value="(\d+)"[^>]*>([^<]*)</option>', body)
        unit = price(completed)
        assert options == [(s, f"+{s} s (${unit * int(s):.2f})") for s in ("4", "8", "12")]

    def test_the_owner_extends_by_the_chosen_seconds(
        self, alice_client: Client, alice: User, deriving: Provider, completed: Video
    ) -> None:
        url = reverse("jobs:extend", args=[completed.pk])
        key = form_key(alice_client.get(url).content.decode())
        r = alice_client.post(url, {"key": key, "prompt": "the cat jumps", "seconds": "8"})
        assert r.status_code == 302
        video = Video.objects.get(prompt="the cat jumps")
        assert (video.kind, video.source, video.added_seconds) == (
            Video.Kind.EXTENSION,
            completed,
            "8",
        )
        assert video.seconds == str(int(completed.seconds) + 8)
        assert video.cost_estimate == price(completed) * 8  # the added seconds, not the total

    def test_a_length_the_catalog_does_not_offer_is_refused_in_words(
        self, alice_client: Client, deriving: Provider, completed: Video
    ) -> None:
        url = reverse("jobs:extend", args=[completed.pk])
        r = alice_client.post(url, {"key": str(uuid.uuid4()), "prompt": "p", "seconds": "7"})
        assert r.status_code == 400
        assert b"Pick how many seconds to add from the list." in r.content
        assert Video.objects.count() == 1

    def test_without_catalog_lengths_the_documented_ones(
        self, alice: User, deriving: Provider, completed: Video
    ) -> None:
        deriving.catalog.all().delete()
        video = submit_extension(
            user=alice, source=completed, prompt="p", seconds="20", key=uuid.uuid4()
        )
        assert video.added_seconds == "20" and video.cost_estimate == 0  # no price known
        with pytest.raises(ValidationError, match="adds one of 4, 8, 12, 16 or 20 seconds"):
            submit_extension(
                user=alice, source=completed, prompt="p", seconds="5", key=uuid.uuid4()
            )

    def test_a_provider_without_extensions_refuses_in_words(
        self, alice_client: Client, completed: Video
    ) -> None:
        url = reverse("jobs:extend", args=[completed.pk])
        body = alice_client.get(url).content.decode()
        assert "The provider “Sim” does not offer extensions." in body
        r = alice_client.post(url, {"key": str(uuid.uuid4()), "prompt": "p", "seconds": "4"})
        assert r.status_code == 400 and Video.objects.count() == 1


class TestWhoMay:
    def test_another_user_extends_as_themselves(
        self, client: Client, alice: User, bob: User, deriving: Provider, completed: Video
    ) -> None:
        Video.objects.filter(pk=completed.pk).update(owner=alice)
        client.force_login(bob)
        url = reverse("jobs:extend", args=[completed.pk])
        key = form_key(client.get(url).content.decode())
        assert client.post(url, {"key": key, "prompt": "p", "seconds": "4"}).status_code == 302
        assert Video.objects.get(kind=Video.Kind.EXTENSION).owner == bob

    def test_another_users_form_key_is_refused(
        self, client: Client, alice: User, bob: User, deriving: Provider, completed: Video
    ) -> None:
        key = uuid.uuid4()
        submit_edit(user=alice, source=completed, prompt="mine", key=key)
        client.force_login(bob)
        r = client.post(reverse("jobs:edit", args=[completed.pk]), {"key": str(key), "prompt": "x"})
        assert r.status_code == 403
        assert Video.objects.filter(kind=Video.Kind.EDIT).get().owner == alice

    @pytest.mark.parametrize("name", ["jobs:edit", "jobs:extend"])
    def test_anonymous_visitors_are_sent_to_log_in(
        self, client: Client, deriving: Provider, completed: Video, name: str
    ) -> None:
        url = reverse(name, args=[completed.pk])
        assert client.get(url)["Location"].startswith(reverse("login"))
        r = client.post(url, {"key": str(uuid.uuid4()), "prompt": "p", "seconds": "4"})
        assert r.status_code == 302 and r["Location"].startswith(reverse("login"))
        assert Video.objects.count() == 1


class TestLineage:
    def test_the_family_view_labels_each_kind(
        self, alice_client: Client, alice: User, deriving: Provider, completed: Video
    ) -> None:
        remix = submit_remix(user=alice, source=completed, prompt="in sepia", key=uuid.uuid4())
        edit = submit_edit(user=alice, source=completed, prompt="purple sky", key=uuid.uuid4())
        ext = submit_extension(
            user=alice, source=completed, prompt="then", seconds="8", key=uuid.uuid4()
        )
        body = alice_client.get(reverse("jobs:family", args=[completed.pk])).content.decode()
        link = f'<a href="{completed.get_absolute_url()}">#{completed.pk}</a>'
        for video, label in ((remix, "Remix of "), (edit, "Edit of "), (ext, "Extension of ")):
            node = body[body.index(f'id="family-{video.pk}"') :]
            node = node[: node.index("</li>")]
            assert label + link in node, label
        assert f"Extension of {link} (+8 s)" in body
        # An edit's prompt is what to change, shown as written, not diffed against the scene.
        node = body[body.index(f'id="family-{edit.pk}"') :]
        assert "<del>" not in node[: node.index("</li>")]

    def test_the_detail_page_says_what_it_was_made_from(
        self, alice_client: Client, alice: User, deriving: Provider, completed: Video
    ) -> None:
        ext = submit_extension(
            user=alice, source=completed, prompt="then", seconds="4", key=uuid.uuid4()
        )
        body = alice_client.get(ext.get_absolute_url()).content.decode()
        assert f'Extension of <a href="{completed.get_absolute_url()}">#{completed.pk} “' in body
        assert "(+4 s)" in body and "Extension of <code" in body
        source_page = alice_client.get(completed.get_absolute_url()).content.decode()
        assert f'#{ext.pk}</a> <span class="kind">Extension +4 s</span>' in source_page
