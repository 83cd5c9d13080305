"""Batches can be found again (the Batches page, mine / all, live progress, links from each
member), and forms that prevent waste (an unchanged remix prompt, the budget left on the remix
and batch forms, and a warning before an estimate above it)."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from jobs.models import Batch, Budget, Video
from jobs.services.submit import submit_batch

HX = {"HX-Request": "true"}


@pytest.fixture(autouse=True)
def no_worker(settings: Any) -> None:
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}}


def batch_of(user: User, source: Video, prompts: list[str]) -> Batch:
    return submit_batch(user=user, source=source, prompts=prompts, key=uuid.uuid4())


class TestBatchesPage:
    def test_mine_by_default_all_on_request(
        self, alice_client: Client, alice: User, bob: User, completed: Video
    ) -> None:
        mine = batch_of(alice, completed, ["a", "b"])
        theirs = batch_of(bob, completed, ["c"])
        body = alice_client.get("/batches/").content.decode()
        assert f">Batch #{mine.pk}</a>" in body and f">Batch #{theirs.pk}</a>" not in body
        assert "0 of 2 completed" in body and 'aria-current="page">Mine' in body
        body = alice_client.get("/batches/?mine=0").content.decode()
        assert f">Batch #{mine.pk}</a>" in body and f">Batch #{theirs.pk}</a>" in body

    def test_it_polls_while_a_batch_runs_and_stops_when_all_are_done(
        self, alice_client: Client, alice: User, completed: Video
    ) -> None:
        batch = batch_of(alice, completed, ["a"])
        r = alice_client.get("/batches/", headers=HX)
        body = r.content.decode()
        assert body.lstrip().startswith('<div id="batch-list"') and "data-poll" in body
        assert 'hx-get="/batches/?mine=1&amp;page=1"' in body
        batch.videos.update(status="completed", progress=100, submission="submitted",
                            asset_state="archived")  # fmt: skip
        body = alice_client.get("/batches/", headers=HX).content.decode()
        assert "data-poll" not in body and "1 of 1 completed" in body

    def test_a_page_of_batches_is_a_fixed_number_of_queries(
        self, alice_client: Client, alice: User, completed: Video, django_assert_max_num_queries
    ) -> None:
        for _ in range(6):
            batch_of(alice, completed, ["a", "b", "c"])
        with django_assert_max_num_queries(12):
            assert alice_client.get("/batches/", headers=HX).status_code == 200

    def test_the_nav_the_row_and_the_detail_page_link_to_the_batch(
        self, alice_client: Client, alice: User, completed: Video
    ) -> None:
        batch = batch_of(alice, completed, ["a"])
        member = batch.videos.get()
        table = alice_client.get("/").content.decode()
        assert 'href="/batches/"' in table  # the nav
        assert f'href="/batches/{batch.pk}/">Batch #{batch.pk}</a>' in table  # the row
        detail = alice_client.get(member.get_absolute_url()).content.decode()
        assert f'href="/batches/{batch.pk}/">Batch #{batch.pk}</a>' in detail


class TestUnchangedRemix:
    def test_a_first_unchanged_submit_is_answered_with_a_warning(
        self, alice_client: Client, completed: Video
    ) -> None:
        url = f"/videos/{completed.pk}/remix/"
        key = str(uuid.uuid4())
        r = alice_client.post(url, {"key": key, "prompt": completed.prompt + "\r\n"})
        body = r.content.decode()
        assert r.status_code == 400 and "The prompt is the same as the source" in body
        assert 'id="submit-unchanged"' in body and 'id="submit-unchanged" hidden' not in body
        assert not Video.objects.filter(source=completed).exists()
        r = alice_client.post(
            url, {"key": key, "prompt": completed.prompt, "submit_unchanged": "on"}
        )
        assert r.status_code == 302 and Video.objects.filter(source=completed).count() == 1

    def test_a_changed_prompt_goes_straight_through(
        self, alice_client: Client, completed: Video
    ) -> None:
        r = alice_client.post(
            f"/videos/{completed.pk}/remix/",
            {"key": str(uuid.uuid4()), "prompt": completed.prompt + ", at night"},
        )
        assert r.status_code == 302

    def test_the_form_carries_the_source_prompt_for_the_live_warning(
        self, alice_client: Client, completed: Video
    ) -> None:
        body = alice_client.get(f"/videos/{completed.pk}/remix/").content.decode()
        assert "data-unchanged-guard" in body and 'id="unchanged-warning"' in body
        assert "js/guard." in body


class TestBudgetOnForms:
    def test_the_remix_form_shows_what_is_left_and_warns_above_it(
        self, alice_client: Client, alice: User, completed: Video
    ) -> None:
        Budget.objects.create(user=alice, monthly_limit=Decimal("5.00"))
        body = alice_client.get(f"/videos/{completed.pk}/remix/").content.decode()
        assert "You have <strong>$5.00</strong> left of your $5.00 monthly budget" in body
        assert 'id="over-budget"' not in body
        Budget.objects.filter(user=alice).update(monthly_limit=Decimal("0.10"))
        body = alice_client.get(f"/videos/{completed.pk}/remix/").content.decode()
        cost = completed.cost_estimate
        assert f"This remix costs ${cost:.2f}, more than the $0.10 left of your" in body

    def test_the_batch_form_shows_what_is_left_and_warns_above_it(
        self, alice_client: Client, alice: User, completed: Video
    ) -> None:
        unit = completed.cost_estimate
        Budget.objects.create(user=alice, monthly_limit=unit * 2)
        body = alice_client.get(f"/videos/{completed.pk}/batch/").content.decode()
        assert f"You have <strong>${unit * 2:.2f}</strong> left" in body
        assert f'data-left="{unit * 2:.2f}"' in body  # static/js/guard.js counts the jobs
        assert 'id="over-budget" hidden' in body and "js/guard." in body
        r = alice_client.post(
            f"/videos/{completed.pk}/batch/",
            {"key": str(uuid.uuid4()), "prompts": "a\nb\nc", "variations": 1},
        )
        body = r.content.decode()
        assert r.status_code == 400
        assert f"3 jobs at ${unit:.2f} each cost more than the ${unit * 2:.2f} left" in body
