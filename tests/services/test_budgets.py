"""Costs and budgets: the usage page, monthly limits per user and team, and the submit race."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.core.exceptions import ValidationError
from django.db import connection
from pytest_django import Settings

from jobs import lifecycle, selectors
from jobs.lib.months import month_start
from jobs.models import Budget, CatalogEntry, Provider, Video
from jobs.services.submit import submit_batch, submit_remix


@pytest.fixture(autouse=True)
def no_worker(settings: Settings) -> None:
    """Budgets are decided at submit time; nothing here needs the job to reach the provider."""
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}}


def spend(
    provider: Provider, owner: User | None, cost: str, status: str = "completed", **kw: Any
) -> Video:
    video = Video.objects.create(
        provider=provider,
        owner=owner,
        video_id=f"video_{uuid.uuid4().hex}",
        status=status,
        submission=kw.pop("submission", Video.Submission.SUBMITTED),
        prompt=f"spent {cost}",
        model="sora-2",
        size="720x1280",
        seconds="4",
        cost_estimate=Decimal(cost),
        **kw,
    )
    # Spend is the Charge ledger: what recording the job (and its failure) would have written.
    lifecycle.open_charge(video)
    if video.submission == Video.Submission.REJECTED:
        lifecycle.waive_charge(video.pk)
    return video


@pytest.fixture
def source(provider: Provider) -> Video:
    """A completed 4-second sora-2 clip: each remix of it costs $0.40."""
    return spend(provider, None, "0.40")


@pytest.fixture
def editors(alice: User, bob: User) -> Group:
    team = Group.objects.create(name="editors")
    team.user_set.add(alice, bob)
    return team


def remix(user: User, source: Video, key: uuid.UUID | None = None) -> Video:
    return submit_remix(user=user, source=source, prompt="again", key=key or uuid.uuid4())


class TestPrices:
    def test_seed_demo_seeds_the_sora_2_prices(self, provider) -> None:
        prices = {(e.model, e.size): str(e.price_per_second) for e in CatalogEntry.objects.all()}
        assert prices[("sora-2", "1280x720")] == "0.1000"
        assert prices[("sora-2-pro", "720x1280")] == "0.3000"
        assert prices[("sora-2-pro", "1792x1024")] == "0.5000"
        assert ("sora-2", "1792x1024") not in prices

    def test_prices_are_edited_inline_on_the_provider(self, client, staff, provider) -> None:
        client.force_login(staff)
        body = client.get(f"/admin/jobs/provider/{provider.pk}/change/").content.decode()
        assert 'name="catalog-0-price_per_second"' in body
        assert client.get("/admin/jobs/budget/").status_code == 200
        assert client.get("/admin/jobs/budget/add/").status_code == 200


class TestUsagePage:
    def test_it_sums_per_user_team_and_month_without_failures(
        self, client, staff, alice, bob, editors, provider, django_user_model
    ) -> None:
        carol = django_user_model.objects.create_user("carol", password="carol-pass-123")
        spend(provider, alice, "1.20")
        spend(provider, alice, "0.40", status="in_progress")  # in flight: counts
        spend(provider, alice, "5.00", status="failed")  # failed: free
        spend(provider, alice, "7.00", status="failed", submission="rejected")  # rejected: free
        spend(provider, bob, "0.80")
        spend(provider, carol, "3.00")
        last_month = month_start() - timedelta(days=3)
        spend(provider, alice, "9.00", requested_at=last_month)
        client.force_login(staff)
        r = client.get("/usage/")
        assert r.status_code == 200
        usage = r.context["usage"]
        users = {row["owner__username"]: row["total"] for row in usage.per_user}
        assert users == {"alice": Decimal("1.60"), "bob": Decimal("0.80"), "carol": Decimal("3")}
        teams = {row["name"]: row["total"] for row in usage.per_team}
        assert teams == {"editors": Decimal("2.40")}
        assert usage.total == Decimal("5.40")
        months = [row["total"] for row in usage.per_month]
        assert months == [Decimal("5.40"), Decimal("9")]
        body = r.content.decode()
        assert "$1.60" in body and "$2.40" in body and "$5.40" in body
        r = client.get(f"/usage/?month={last_month:%Y-%m}")
        assert r.context["usage"].total == Decimal("9")

    def test_people_see_their_own_spend_and_their_teams(
        self, alice_client, alice, bob, editors, provider, django_user_model
    ) -> None:
        carol = django_user_model.objects.create_user("carol", password="carol-pass-123")
        Group.objects.create(name="strangers").user_set.add(carol)
        spend(provider, alice, "1.00")
        spend(provider, bob, "2.00")
        spend(provider, carol, "4.00")
        usage = alice_client.get("/usage/").context["usage"]
        assert [row["owner__username"] for row in usage.per_user] == ["alice"]
        assert {row["name"]: row["total"] for row in usage.per_team} == {"editors": Decimal("3")}

    def test_budgets_show_what_is_left(self, alice_client, alice, provider) -> None:
        Budget.objects.create(user=alice, monthly_limit=Decimal("10"))
        spend(provider, alice, "2.50")
        body = alice_client.get("/usage/").content.decode()
        assert "$7.50" in body and 'value="25"' in body


class TestBudgets:
    def test_a_remix_over_the_budget_is_refused_in_words(self, alice, source, provider) -> None:
        Budget.objects.create(user=alice, monthly_limit=Decimal("10.00"))
        spend(provider, alice, "9.80", status="in_progress")
        with pytest.raises(ValidationError) as exc:
            remix(alice, source)
        assert exc.value.messages == [
            "This remix costs $0.40; you have $0.20 left of your $10.00 monthly budget."
        ]
        assert not Video.objects.filter(prompt="again").exists()

    def test_the_last_dollar_can_be_spent_exactly(self, alice, source, provider) -> None:
        Budget.objects.create(user=alice, monthly_limit=Decimal("1.00"))
        spend(provider, alice, "0.60")
        remix(alice, source)
        with pytest.raises(ValidationError, match=r"you have \$0.00 left"):
            remix(alice, source)

    def test_failed_jobs_and_last_month_do_not_count(self, alice, source, provider) -> None:
        Budget.objects.create(user=alice, monthly_limit=Decimal("1.00"))
        spend(provider, alice, "5.00", status="failed")
        spend(provider, alice, "5.00", submission="rejected", status="failed")
        spend(provider, alice, "5.00", requested_at=month_start() - timedelta(hours=1))
        assert remix(alice, source).cost_estimate == Decimal("0.40")

    def test_a_resubmitted_form_is_not_charged_twice(self, alice, source) -> None:
        Budget.objects.create(user=alice, monthly_limit=Decimal("0.40"))
        key = uuid.uuid4()
        first = remix(alice, source, key)
        assert remix(alice, source, key) == first  # the budget is used up, but this is no new job

    def test_the_team_budget_counts_every_member(
        self, alice, bob, editors, source, provider
    ) -> None:
        Budget.objects.create(group=editors, monthly_limit=Decimal("5.00"))
        spend(provider, bob, "4.90")
        with pytest.raises(ValidationError) as exc:
            remix(alice, source)
        assert exc.value.messages == [
            "This remix costs $0.40; your team “editors” has $0.10 left of its $5.00 monthly "
            "budget."
        ]

    def test_a_batch_is_checked_as_a_whole(self, alice, source, provider) -> None:
        Budget.objects.create(user=alice, monthly_limit=Decimal("1.00"))
        with pytest.raises(ValidationError) as exc:
            submit_batch(user=alice, source=source, prompts=["a", "b", "c"], key=uuid.uuid4())
        assert exc.value.messages == [
            "This batch of 3 remixes costs $1.20; you have $1.00 left of your $1.00 monthly budget."
        ]
        assert Video.objects.filter(owner=alice).count() == 0

    def test_the_create_page_shows_the_refusal_and_what_is_left(
        self, alice_client, alice, provider
    ) -> None:
        Budget.objects.create(user=alice, monthly_limit=Decimal("0.50"))
        r = alice_client.get("/videos/new/")
        assert b"You have <strong>$0.50</strong> left of your $0.50 monthly budget" in r.content
        r = alice_client.post(
            "/videos/new/",
            {
                "key": str(uuid.uuid4()),
                "provider": provider.pk,
                "model": "sora-2",
                "size": "1280x720",
                "seconds": "8",
                "prompt": "too long for the budget",
            },
        )
        assert r.status_code == 400
        assert "This video costs $0.80; you have $0.50 left of your $0.50 monthly budget." in (
            r.content.decode()
        )

    def test_a_budget_is_for_a_user_or_a_team_not_both(self, alice, editors) -> None:
        from django.db import IntegrityError

        with pytest.raises(IntegrityError):
            Budget.objects.create(user=alice, group=editors, monthly_limit=Decimal("1"))


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_submits_cannot_both_spend_the_last_dollar(
    alice, source, provider, monkeypatch
) -> None:
    """Two requests, each in its own thread with its own DB connection, race for one slot.

    Summing is slowed down, so without the lock both would read the same spend and both insert.
    On PostgreSQL the budget row's FOR UPDATE makes the second wait; on SQLite the IMMEDIATE
    transaction does.
    """
    Budget.objects.create(user=alice, monthly_limit=Decimal("1.00"))
    spend(provider, alice, "0.40")  # $0.60 left: room for one $0.40 remix, not two
    slow_sum = selectors.spent

    def spent_slowly(**kwargs: Any) -> Decimal:
        total = slow_sum(**kwargs)
        time.sleep(0.3)  # the window in which an unlocked check would let both through
        return total

    monkeypatch.setattr(selectors, "spent", spent_slowly)
    start = threading.Barrier(2)
    outcomes: list[str] = []

    def submit(n: int) -> None:
        try:
            start.wait()
            submit_remix(user=alice, source=source, prompt=f"race {n}", key=uuid.uuid4())
            outcomes.append("ok")
        except ValidationError as exc:
            outcomes.append(" ".join(exc.messages))
        finally:
            connection.close()  # this thread's own connection

    threads = [threading.Thread(target=submit, args=(n,)) for n in (1, 2)]
    began = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    elapsed = time.monotonic() - began
    assert sorted(outcomes) == [
        "This remix costs $0.40; you have $0.20 left of your $1.00 monthly budget.",
        "ok",
    ]
    assert Video.objects.filter(owner=alice, prompt__startswith="race").count() == 1
    assert elapsed >= 0.55, "the two checks overlapped instead of running one after the other"
    assert connection.vendor in ("postgresql", "sqlite")
