"""Comments at a moment: saved at the timecode, threaded one level, @mentions told once (toast
and e-mail), edited only by their author, removed by their author or staff (the thread stays)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser, Group, User
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from pytest_django import DjangoCaptureOnCommitCallbacks, Settings

from jobs.models import (
    COMMENT_MAX_LENGTH,
    AuditEvent,
    Comment,
    Mention,
    NotificationTarget,
    OutboundDelivery,
    Provider,
    Video,
)
from jobs.notify import take_notifications
from jobs.review_reads import comment_threads
from jobs.services.comments import (
    add_comment,
    edit_comment,
    mentioned_names,
    remove_comment,
)


def a_video(owner: User | None, seconds: str = "8") -> Video:
    """A finished video in the database; comments never call the provider."""
    provider, _ = Provider.objects.get_or_create(
        name="P", defaults={"base_url": "http://127.0.0.1:9/v1"}
    )
    return Video.objects.create(
        owner=owner,
        provider=provider,
        prompt="A red kite over the dunes",
        status=Video.Status.COMPLETED,
        progress=100,
        seconds=seconds,
        model="sora-2",
        size="720x1280",
    )


@pytest.fixture
def carol(django_user_model: type[User]) -> User:
    return django_user_model.objects.create_user("carol", password="x", email="carol@example.com")


@pytest.fixture
def video(alice: User) -> Video:
    return a_video(alice)


class TestWriting:
    def test_a_comment_is_saved_at_its_moment_audited_and_sent_out(
        self, video: Video, alice: User, bob: User
    ) -> None:
        team = Group.objects.create(name="Studio")
        alice.groups.add(team)
        NotificationTarget.objects.create(team=team, kind="slack", url="https://x.test/a")

        comment = add_comment(
            user=bob, video=video, body="  The kite turns too early  ", timecode=3.14159
        )

        assert (comment.timecode, comment.body, comment.author) == (
            3.142,
            "The kite turns too early",
            bob,
        )
        event = AuditEvent.objects.get(action="commented")
        assert event.actor == bob and event.detail["video"] == video.pk
        delivery = OutboundDelivery.objects.get(event="video.commented")
        assert (
            f"bob commented on #{video.pk} at 0:03.1: The kite turns too early"
            in delivery.payload["data"]["text"]
        )

    def test_a_comment_on_the_whole_video_has_no_moment(self, video: Video, bob: User) -> None:
        assert add_comment(user=bob, video=video, body="Lovely light").timecode is None

    @pytest.mark.parametrize(
        "timecode, words",
        [
            (9.5, "0:09.5 is past the end of this 8-second video."),
            (-1.0, "The moment must be a time in the video"),
            (float("nan"), "The moment must be a time in the video"),
        ],
    )
    def test_a_moment_outside_the_video_is_refused_in_words(
        self, video: Video, bob: User, timecode: float, words: str
    ) -> None:
        with pytest.raises(ValidationError) as refused:
            add_comment(user=bob, video=video, body="here", timecode=timecode)
        assert words in refused.value.message_dict["timecode"][0]
        assert not Comment.objects.exists()

    def test_the_end_itself_is_a_moment(self, video: Video, bob: User) -> None:
        assert add_comment(user=bob, video=video, body="last frame", timecode=8.0).timecode == 8.0

    @pytest.mark.parametrize(
        "body, words",
        [
            (" \n\t", "Write something first: the comment is empty."),
            ("x" * (COMMENT_MAX_LENGTH + 1), f"this one has {COMMENT_MAX_LENGTH + 1:,}"),
        ],
    )
    def test_an_empty_or_too_long_body_is_refused_in_words(
        self, video: Video, bob: User, body: str, words: str
    ) -> None:
        with pytest.raises(ValidationError) as refused:
            add_comment(user=bob, video=video, body=body)
        assert words in refused.value.message_dict["body"][0]

    def test_the_longest_body_fits(self, video: Video, bob: User) -> None:
        body = "x" * COMMENT_MAX_LENGTH
        assert len(add_comment(user=bob, video=video, body=body).body) == COMMENT_MAX_LENGTH

    def test_anonymous_cannot_comment(self, video: Video) -> None:
        with pytest.raises(PermissionDenied):
            add_comment(user=AnonymousUser(), video=video, body="hi")  # type: ignore[arg-type]


class TestThreads:
    def test_a_reply_joins_its_thread_one_level_deep_without_a_moment_of_its_own(
        self, video: Video, alice: User, bob: User
    ) -> None:
        head = add_comment(user=bob, video=video, body="Too dark here", timecode=2)
        reply = add_comment(user=alice, video=video, body="Agreed", timecode=5, parent=head)
        deeper = add_comment(user=bob, video=video, body="Fixing it", parent=reply)

        assert reply.parent == head and deeper.parent == head  # one level: both on the head
        assert reply.timecode is None and deeper.timecode is None
        whole = add_comment(user=alice, video=video, body="Overall: good")
        later = add_comment(user=alice, video=video, body="Music cuts", timecode=1)
        threads = comment_threads(video)
        assert threads == [whole, later, head]  # whole-video first, then by moment
        assert threads[2].standing_replies == [reply, deeper]  # type: ignore[attr-defined]

    def test_a_reply_to_a_comment_on_another_video_is_refused(
        self, video: Video, alice: User, bob: User
    ) -> None:
        elsewhere = add_comment(user=bob, video=a_video(alice), body="other")
        with pytest.raises(ValidationError, match="another video"):
            add_comment(user=alice, video=video, body="reply", parent=elsewhere)


class TestMentions:
    def test_names_are_read_from_the_words_not_from_addresses(self) -> None:
        body = "@Bob and (@carol.), mail ann@example.com, @bob again, @dee-"
        assert mentioned_names(body) == ["bob", "carol", "dee"]

    def test_a_mention_makes_a_row_and_one_notice(
        self, video: Video, alice: User, bob: User, carol: User
    ) -> None:
        comment = add_comment(
            user=alice, video=video, body="@Bob @carol @alice @nobody look", timecode=1
        )

        assert set(comment.mentions.all()) == {bob, carol}  # not the author, not unknown names
        first = take_notifications(user=bob).items
        assert len(first) == 1 and first[0]["id"] == f"mention-{Mention.objects.get(user=bob).pk}"
        assert first[0]["text"].startswith(f"alice mentioned you on #{video.pk}: “@Bob @carol")
        assert first[0]["url"] == f"/videos/{video.pk}/#comment-{comment.pk}"
        assert take_notifications(user=bob).items == []  # told once
        assert len(take_notifications(user=carol).items) == 1
        assert take_notifications(user=alice).items == []

    def test_an_edit_tells_only_the_people_it_newly_names(
        self, video: Video, alice: User, bob: User, carol: User
    ) -> None:
        comment = add_comment(user=alice, video=video, body="@bob see this")
        assert len(take_notifications(user=bob).items) == 1

        edit_comment(user=alice, comment=comment, body="@bob and @carol see this")

        assert take_notifications(user=bob).items == []  # still named, already told
        assert len(take_notifications(user=carol).items) == 1
        edit_comment(user=alice, comment=comment, body="never mind")
        assert not comment.mentions.exists()

    def test_mentions_are_e_mailed_where_enabled(
        self,
        video: Video,
        alice: User,
        bob: User,
        carol: User,
        settings: Settings,
        django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
    ) -> None:
        with django_capture_on_commit_callbacks(execute=True):
            add_comment(user=alice, video=video, body="@carol off", timecode=2)
        assert mail.outbox == []  # NOTIFY_BY_EMAIL is off by default

        settings.NOTIFY_BY_EMAIL = True
        with django_capture_on_commit_callbacks(execute=True):
            add_comment(user=alice, video=video, body="@carol @bob the sky at 0:04", timecode=4)

        assert [m.to for m in mail.outbox] == [["carol@example.com"]]  # bob has no address
        message = mail.outbox[0]
        assert message.subject.startswith(f"alice mentioned you on video #{video.pk}")
        assert (
            "a comment at 0:04 on video" in message.body and "@carol @bob the sky" in message.body
        )
        assert f"/videos/{video.pk}/#comment-" in message.body


class TestEditAndRemove:
    def test_the_author_edits_their_own(self, video: Video, bob: User) -> None:
        comment = add_comment(user=bob, video=video, body="frist")
        edit_comment(user=bob, comment=comment, body="first")
        comment.refresh_from_db()
        assert comment.body == "first" and comment.edited_at is not None

    @pytest.mark.parametrize("who", ["alice", "staff"])
    def test_nobody_else_edits_it_not_even_staff(
        self, video: Video, bob: User, who: str, request: pytest.FixtureRequest
    ) -> None:
        comment = add_comment(user=bob, video=video, body="mine")
        with pytest.raises(PermissionDenied, match="Only its author"):
            edit_comment(user=request.getfixturevalue(who), comment=comment, body="theirs")
        comment.refresh_from_db()
        assert comment.body == "mine"

    def test_staff_remove_any_comment_and_its_thread_keeps_its_shape(
        self, video: Video, alice: User, bob: User, staff: User
    ) -> None:
        head = add_comment(user=bob, video=video, body="rude words @alice", timecode=3)
        reply = add_comment(user=alice, video=video, body="please don't", parent=head)

        remove_comment(user=staff, comment=head)

        head.refresh_from_db()
        assert head.body == "" and head.removed_by == staff and head.removed_at is not None
        assert not Mention.objects.filter(comment=head).exists()
        assert take_notifications(user=alice).items == []  # the gone words are not toasted
        threads = comment_threads(video)
        assert threads == [head] and threads[0].standing_replies == [reply]  # type: ignore[attr-defined]
        event = AuditEvent.objects.get(action="comment_removed")
        assert event.actor == staff and event.detail == {"video": video.pk, "by_author": False}
        with pytest.raises(PermissionDenied):
            edit_comment(user=bob, comment=head, body="back again")

    def test_a_removed_comment_with_nothing_under_it_drops_out(
        self, video: Video, bob: User
    ) -> None:
        comment = add_comment(user=bob, video=video, body="oops")
        remove_comment(user=bob, comment=comment)
        assert comment_threads(video) == []
        assert AuditEvent.objects.get(action="comment_removed").detail["by_author"] is True

    def test_a_plain_member_cannot_remove_anothers_comment(
        self, video: Video, alice: User, bob: User
    ) -> None:
        comment = add_comment(user=bob, video=video, body="on alice's own video")
        with pytest.raises(PermissionDenied):
            remove_comment(user=alice, comment=comment)  # owning the video is not moderating
        comment.refresh_from_db()
        assert comment.removed_at is None
