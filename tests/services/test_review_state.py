"""Review state: asked for by the owner (or staff), one verdict per reviewer (changeable), the
video's state recomputed by one rule, the table filtered by it, and my waiting list."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from django.core.exceptions import PermissionDenied, ValidationError

from jobs import selectors
from jobs.models import (
    AuditEvent,
    NotificationTarget,
    OutboundDelivery,
    Provider,
    Review,
    Video,
)
from jobs.review_reads import waiting_for
from jobs.services.review import request_review, review_state_of, set_verdict

A, C, N = "approved", "changes_requested", "needs_review"


def a_video(owner: User | None, status: str = Video.Status.COMPLETED) -> Video:
    provider, _ = Provider.objects.get_or_create(
        name="P", defaults={"base_url": "http://127.0.0.1:9/v1"}
    )
    return Video.objects.create(
        owner=owner, provider=provider, prompt="A red kite", status=status, seconds="8"
    )


@pytest.fixture
def carol(django_user_model: type[User]) -> User:
    return django_user_model.objects.create_user("carol", password="x")


@pytest.fixture
def video(alice: User) -> Video:
    return a_video(alice)


def state(video: Video) -> str:
    return Video.objects.values_list("review_state", flat=True).get(pk=video.pk)


@pytest.mark.parametrize(
    "verdicts, expected",
    [
        ([], ""),
        ([N], N),
        ([A, N], N),  # someone still to answer
        ([A, A], A),  # everyone asked has approved
        ([A, C, N], C),  # one "changes requested" holds it back
        ([C, A], C),
    ],
)
def test_the_one_rule_for_the_teams_verdict(verdicts: list[str], expected: str) -> None:
    assert review_state_of(verdicts) == expected


class TestAsking:
    def test_the_owner_asks_team_members(
        self, video: Video, alice: User, bob: User, carol: User
    ) -> None:
        new = request_review(user=alice, video=video, reviewers=[bob, carol, alice])

        assert [(r.reviewer, r.verdict, r.requested_by) for r in new] == [
            (bob, N, alice),
            (carol, N, alice),
        ]  # never the owner themselves
        assert state(video) == N
        event = AuditEvent.objects.get(action="review_requested")
        assert event.actor == alice and event.detail == {"reviewers": ["bob", "carol"]}

    def test_asking_again_never_erases_an_answer(
        self, video: Video, alice: User, bob: User, carol: User
    ) -> None:
        request_review(user=alice, video=video, reviewers=[bob])
        set_verdict(user=bob, video=video, verdict=A)
        assert request_review(user=alice, video=video, reviewers=[bob]) == []
        assert Review.objects.get(reviewer=bob).verdict == A
        request_review(user=alice, video=video, reviewers=[carol])
        assert state(video) == N  # carol has not answered yet

    def test_only_the_owner_or_staff_may_ask(
        self, video: Video, bob: User, carol: User, staff: User
    ) -> None:
        with pytest.raises(PermissionDenied, match="Only the person who submitted it"):
            request_review(user=bob, video=video, reviewers=[carol])
        assert not Review.objects.exists()
        assert request_review(user=staff, video=video, reviewers=[carol])

    def test_asking_nobody_or_about_an_unfinished_video_is_refused(
        self, video: Video, alice: User, bob: User
    ) -> None:
        with pytest.raises(ValidationError, match="Pick at least one team member"):
            request_review(user=alice, video=video, reviewers=[alice])
        running = a_video(alice, status=Video.Status.IN_PROGRESS)
        with pytest.raises(PermissionDenied, match="Only a completed video"):
            request_review(user=alice, video=running, reviewers=[bob])


class TestVerdicts:
    def test_one_verdict_per_reviewer_changeable_with_who_and_when(
        self, video: Video, alice: User, bob: User
    ) -> None:
        request_review(user=alice, video=video, reviewers=[bob])
        first = set_verdict(user=bob, video=video, verdict=C)
        assert state(video) == C
        second = set_verdict(user=bob, video=video, verdict=A)

        assert Review.objects.filter(video=video).count() == 1
        assert second.pk == first.pk and second.reviewer == bob and second.at >= first.at
        assert state(video) == A
        actions = list(AuditEvent.objects.order_by("pk").values_list("action", flat=True))
        assert actions == ["review_requested", "changes_requested", "approved"]

    def test_one_change_request_holds_the_video_back(
        self, video: Video, alice: User, bob: User, carol: User
    ) -> None:
        request_review(user=alice, video=video, reviewers=[bob, carol])
        set_verdict(user=bob, video=video, verdict=A)
        assert state(video) == N
        set_verdict(user=carol, video=video, verdict=C)
        assert state(video) == C
        set_verdict(user=carol, video=video, verdict=A)
        assert state(video) == A

    def test_anyone_but_the_owner_may_review_unasked(
        self, video: Video, alice: User, bob: User
    ) -> None:
        set_verdict(user=bob, video=video, verdict=A)
        assert state(video) == A
        with pytest.raises(PermissionDenied, match="You made this video"):
            set_verdict(user=alice, video=video, verdict=A)

    def test_a_verdict_must_be_approve_or_request_changes(self, video: Video, bob: User) -> None:
        with pytest.raises(ValidationError, match="Choose Approve or Request changes"):
            set_verdict(user=bob, video=video, verdict=N)

    def test_outside_tools_hear_once_when_the_video_becomes_approved(
        self, video: Video, alice: User, bob: User, carol: User
    ) -> None:
        team = Group.objects.create(name="Studio")
        alice.groups.add(team)
        NotificationTarget.objects.create(team=team, kind="slack", url="https://x.test/a")
        request_review(user=alice, video=video, reviewers=[bob, carol])

        set_verdict(user=bob, video=video, verdict=A)
        assert not OutboundDelivery.objects.exists()  # carol has not answered: not approved yet
        set_verdict(user=carol, video=video, verdict=A)
        set_verdict(user=carol, video=video, verdict=A)  # no change: no second event
        delivery = OutboundDelivery.objects.get()
        assert delivery.event == "video.approved"
        assert delivery.payload["data"]["video"]["review_state"] == A
        assert delivery.payload["data"]["actor"] == "carol"


def test_waiting_for_me_lists_only_my_open_requests(
    video: Video, alice: User, bob: User, carol: User
) -> None:
    other = a_video(carol)
    answered = a_video(alice)
    request_review(user=alice, video=video, reviewers=[bob, carol])
    request_review(user=carol, video=other, reviewers=[bob])
    request_review(user=alice, video=answered, reviewers=[bob])
    set_verdict(user=bob, video=answered, verdict=C)

    assert [r.video for r in waiting_for(bob)] == [video, other]  # longest-waiting first
    assert [r.video for r in waiting_for(carol)] == [video]
    assert list(waiting_for(alice)) == []


def test_the_table_filters_by_review_state(alice: User, bob: User) -> None:
    approved, pending, untouched = a_video(alice), a_video(alice), a_video(alice)
    set_verdict(user=bob, video=approved, verdict=A)
    request_review(user=alice, video=pending, reviewers=[bob])

    def table(review: str) -> list[Video]:
        filters = selectors.TableFilters.from_query({"review": review})
        return list(selectors.videos_for_table(user=alice, filters=filters))

    assert table("approved") == [approved]
    assert table("needs_review") == [pending]
    assert table("none") == [untouched]
    assert len(table("")) == 3 and len(table("bogus")) == 3  # an unknown value filters nothing
