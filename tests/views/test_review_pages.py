"""The review card on the detail page through its real forms (htmx and plain posts), the
"Waiting for my review" page, and the table's review badge and filter; who may do what."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from jobs.models import COMMENT_MAX_LENGTH, Comment, Provider, Review, Video
from jobs.services.comments import add_comment
from jobs.services.review import set_verdict

HX = {"HX-Request": "true"}


@pytest.fixture
def video(alice: User) -> Video:
    """Alice's finished, archived video (the page never calls the provider)."""
    provider = Provider.objects.create(name="P", base_url="http://127.0.0.1:9/v1")
    return Video.objects.create(
        owner=alice,
        provider=provider,
        prompt="A red kite over the dunes",
        status=Video.Status.COMPLETED,
        progress=100,
        seconds="8",
        model="sora-2",
        size="720x1280",
        asset_state=Video.Assets.ARCHIVED,
        video_file="archive/kite.mp4",
    )


def as_user(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


class TestTheDetailPage:
    def test_it_shows_the_review_card_with_the_comment_form_at_the_players_moment(
        self, alice_client: Client, video: Video, bob: User
    ) -> None:
        add_comment(user=bob, video=video, body="The kite turns too early", timecode=3.5)
        body = alice_client.get(video.get_absolute_url()).content.decode()

        assert 'id="review"' in body and 'id="comments"' in body and 'id="review-state"' in body
        assert 'name="timecode"' in body and "Comment at the player's moment" in body
        assert 'data-seek="3.5"' in body and ">0:03.5</button>" in body
        assert "js/review." in body  # static JS: the CSP allows no inline script
        assert "You made this video" in body  # the owner gives no verdict

    def test_a_video_still_running_has_no_review_card_yet(
        self, alice_client: Client, video: Video
    ) -> None:
        Video.objects.filter(pk=video.pk).update(status=Video.Status.IN_PROGRESS, progress=40)
        assert 'id="review"' not in alice_client.get(video.get_absolute_url()).content.decode()


class TestComments:
    def test_an_htmx_post_saves_at_the_moment_and_answers_the_list_partial(
        self, video: Video, bob: User
    ) -> None:
        url = f"/videos/{video.pk}/comments/new/"
        r = as_user(bob).post(url, {"body": "Too dark @alice", "timecode": "2.25"}, headers=HX)

        assert r.status_code == 200 and b"<html" not in r.content
        comment = Comment.objects.get()
        assert (comment.author, comment.timecode) == (bob, 2.25)
        assert f'id="comment-{comment.pk}"' in r.content.decode()
        assert 'data-timecode="2.25"' in r.content.decode()

    def test_the_whole_video_box_wins_over_the_moment(self, video: Video, bob: User) -> None:
        url = f"/videos/{video.pk}/comments/new/"
        as_user(bob).post(url, {"body": "Overall", "timecode": "4", "whole": "1"}, headers=HX)
        assert Comment.objects.get().timecode is None

    def test_a_plain_post_goes_back_to_the_video_with_a_message(
        self, video: Video, bob: User
    ) -> None:
        r = as_user(bob).post(
            f"/videos/{video.pk}/comments/new/", {"body": "hi", "timecode": "1"}, follow=True
        )
        assert r.redirect_chain[-1][0] == f"/videos/{video.pk}/#comments"
        assert "Comment added." in r.content.decode()

    def test_a_too_long_comment_is_refused_in_words_with_the_text_kept(
        self, video: Video, bob: User
    ) -> None:
        text = "y" * (COMMENT_MAX_LENGTH + 5)
        r = as_user(bob).post(
            f"/videos/{video.pk}/comments/new/", {"body": text, "timecode": "1"}, headers=HX
        )
        body = r.content.decode()
        assert r.status_code == 200  # htmx swaps only 2xx: the partial carries the words
        assert f"A comment can be at most {COMMENT_MAX_LENGTH:,} characters" in body
        assert text in body and not Comment.objects.exists()

    def test_a_moment_that_is_not_a_number_is_refused_in_words(
        self, video: Video, bob: User
    ) -> None:
        r = as_user(bob).post(
            f"/videos/{video.pk}/comments/new/", {"body": "x", "timecode": "soon"}, follow=True
        )
        assert "Give the moment in seconds from the start" in r.content.decode()
        assert not Comment.objects.exists()

    def test_a_reply_through_the_threads_form(self, video: Video, alice: User, bob: User) -> None:
        head = add_comment(user=bob, video=video, body="Too dark", timecode=2)
        r = as_user(alice).post(
            f"/videos/{video.pk}/comments/new/",
            {"body": "Agreed", "parent": str(head.pk), "timecode": "6"},
            headers=HX,
        )
        reply = Comment.objects.get(parent=head)
        assert reply.timecode is None and "Agreed" in r.content.decode()

    def test_the_author_edits_their_own(self, video: Video, bob: User) -> None:
        comment = add_comment(user=bob, video=video, body="frist", timecode=1)
        r = as_user(bob).post(f"/comments/{comment.pk}/edit/", {"body": "first"}, headers=HX)
        comment.refresh_from_db()
        assert comment.body == "first" and "(edited)" in r.content.decode()

    def test_a_non_owner_cannot_edit_or_remove_anothers_comment(
        self, video: Video, alice: User, bob: User
    ) -> None:
        comment = add_comment(user=bob, video=video, body="mine", timecode=1)
        alice_page = as_user(alice).get(video.get_absolute_url()).content.decode()
        assert f'action="/comments/{comment.pk}/edit/"' not in alice_page  # no form offered...

        edit = as_user(alice).post(f"/comments/{comment.pk}/edit/", {"body": "theirs"})
        remove = as_user(alice).post(f"/comments/{comment.pk}/remove/")

        assert edit.status_code == 403 and remove.status_code == 403  # ...and none accepted
        assert "Only its author can edit a comment." in edit.content.decode()
        comment.refresh_from_db()
        assert comment.body == "mine" and comment.removed_at is None

    def test_staff_remove_any_comment_and_the_thread_stays(
        self, video: Video, alice: User, bob: User, staff: User
    ) -> None:
        head = add_comment(user=bob, video=video, body="rude words", timecode=1)
        add_comment(user=alice, video=video, body="please", parent=head)
        page = as_user(staff).get(video.get_absolute_url()).content.decode()
        assert "Remove (moderate)" in page

        r = as_user(staff).post(f"/comments/{head.pk}/remove/", headers=HX)

        body = r.content.decode()
        assert "Removed by a moderator." in body and "rude words" not in body and "please" in body

    def test_anonymous_visitors_are_sent_to_log_in(self, client: Client, video: Video) -> None:
        for url in (f"/videos/{video.pk}/comments/new/", f"/videos/{video.pk}/review/verdict/"):
            r = client.post(url, {"body": "hi", "verdict": "approved"})
            assert r.status_code == 302 and r["Location"].startswith("/login/")
        assert not Comment.objects.exists() and not Review.objects.exists()


class TestVerdicts:
    def test_a_member_approves_through_the_form_and_the_state_changes(
        self, video: Video, bob: User
    ) -> None:
        r = as_user(bob).post(
            f"/videos/{video.pk}/review/verdict/", {"verdict": "approved"}, headers=HX
        )
        body = r.content.decode()
        assert r.status_code == 200 and 'id="review-state"' in body
        assert "Your verdict: Approved." in body and 'id="review-state-badge">Approved' in body
        assert Video.objects.get(pk=video.pk).review_state == "approved"

    def test_the_owner_cannot_approve_their_own_video(
        self, alice_client: Client, video: Video
    ) -> None:
        r = alice_client.post(f"/videos/{video.pk}/review/verdict/", {"verdict": "approved"})
        assert r.status_code == 403 and "You made this video" in r.content.decode()
        assert not Review.objects.exists()

    def test_the_owner_asks_and_the_reviewer_sees_it_waiting(
        self, alice_client: Client, video: Video, bob: User, staff: User
    ) -> None:
        page = alice_client.get(video.get_absolute_url()).content.decode()
        assert f'name="reviewers" value="{bob.pk}"' in page
        r = alice_client.post(
            f"/videos/{video.pk}/review/ask/", {"reviewers": [str(bob.pk)]}, follow=True
        )
        assert "Asked bob for a review." in r.content.decode()

        waiting = as_user(bob).get("/reviews/").content.decode()
        assert f'id="waiting-{video.pk}"' in waiting and "alice" in waiting
        assert 'aria-current="page"' in waiting and ">Reviews</a>" in waiting
        nothing = as_user(staff).get("/reviews/").content.decode()
        assert 'id="nothing-waiting"' in nothing

    def test_a_plain_member_cannot_ask_for_a_review_of_anothers_video(
        self, video: Video, bob: User, staff: User
    ) -> None:
        r = as_user(bob).post(f"/videos/{video.pk}/review/ask/", {"reviewers": [str(staff.pk)]})
        assert r.status_code == 403 and not Review.objects.exists()


def test_the_table_shows_the_badge_and_filters_by_review_state(
    alice_client: Client, video: Video, bob: User
) -> None:
    other = Video.objects.create(
        owner=video.owner, provider=video.provider, prompt="A quiet harbour", seconds="4"
    )
    set_verdict(user=bob, video=video, verdict="approved")

    page = alice_client.get("/").content.decode()
    assert '<select name="review"' in page and '<option value="approved"' in page
    assert '<span class="badge review approved">Approved</span>' in page

    filtered = alice_client.get("/?review=approved", headers=HX).content.decode()
    assert f'id="video-{video.pk}"' in filtered and f'id="video-{other.pk}"' not in filtered
    none = alice_client.get("/?review=none", headers=HX).content.decode()
    assert f'id="video-{other.pk}"' in none and f'id="video-{video.pk}"' not in none


def test_a_mention_is_toasted_on_the_next_page_once_and_never_by_a_poll(
    alice_client: Client, video: Video, bob: User
) -> None:
    add_comment(user=bob, video=video, body="@alice the sky flickers", timecode=2)
    toast = f"bob mentioned you on #{video.pk}: “@alice the sky flickers”"

    assert toast not in alice_client.get("/", headers=HX).content.decode()  # a poll: not yet
    assert toast not in alice_client.get("/notifications/", headers=HX).content.decode()
    page = alice_client.get("/usage/").content.decode()
    assert toast in page and 'data-toast="mention-' in page
    assert toast not in alice_client.get("/usage/").content.decode()  # told once


def test_markup_in_a_comment_is_shown_as_text(
    alice_client: Client, video: Video, bob: User
) -> None:
    add_comment(
        user=bob, video=video, body='<script>alert(1)</script>\n<b onclick="x">', timecode=1
    )
    body = alice_client.get(video.get_absolute_url()).content.decode()
    assert "<script>alert(1)" not in body and "&lt;script&gt;alert(1)&lt;/script&gt;<br>" in body
    assert '<b onclick="x">' not in body
