"""Family view (source chain, remixes as a nested tree, prompt diffs) and the compare page."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from jobs.lib.prompts import prompt_diff
from jobs.models import Provider, Video
from jobs.services.submit import submit_remix
from tests.conftest import drive


def make(
    provider: Provider, owner: User | None, prompt: str, source: Video | None = None, **kw: Any
) -> Video:
    parent_id = source.video_id if source else ""
    assert parent_id is not None  # every video made here has a provider id
    return Video.objects.create(
        provider=provider,
        owner=owner,
        video_id=f"video_{uuid.uuid4().hex}",
        status=kw.pop("status", "completed"),
        submission=Video.Submission.SUBMITTED,
        prompt=prompt,
        model="sora-2",
        size="720x1280",
        seconds="4",
        progress=100,
        source=source,
        remixed_from_video_id=parent_id,
        **kw,
    )


@pytest.fixture
def family(provider: Provider, alice: User) -> dict[str, Video]:
    """root → child → me → (kid1 → grandkid, kid2); plus a sibling of `me` and a stranger."""
    root = make(provider, alice, "a cat on a piano")
    child = make(provider, alice, "a cat on a red piano", root)
    me = make(provider, alice, "a black cat on a red piano at night", child)
    kid1 = make(provider, alice, "a black cat on a red piano at dawn", me)
    kid2 = make(provider, alice, "a black cat on a red piano", me, status="failed")
    grandkid = make(provider, alice, "a black dog on a red piano at dawn", kid1)
    sibling = make(provider, alice, "a cat on a blue piano", child)
    stranger = make(provider, alice, "something else entirely")
    return dict(
        root=root, child=child, me=me, kid1=kid1, kid2=kid2, grandkid=grandkid,
        sibling=sibling, stranger=stranger,
    )  # fmt: skip


class TestPromptDiff:
    def test_it_marks_inserted_and_deleted_words(self) -> None:
        runs = prompt_diff("a cat on a piano", "a black cat on a red piano")
        assert [t.strip() for op, t in runs if op == "insert"] == ["black", "red"]
        assert not [t for op, t in runs if op == "delete"]
        assert "".join(t for op, t in runs if op != "delete") == "a black cat on a red piano"

    def test_a_replaced_word_is_a_deletion_and_an_insertion(self) -> None:
        runs = prompt_diff("a cat at dawn", "a dog at dawn")
        assert ("delete", "cat") in runs and ("insert", "dog") in runs
        assert "".join(t for op, t in runs if op != "insert") == "a cat at dawn"

    def test_whitespace_and_newlines_survive(self) -> None:
        new = "line one\n\nline  two"
        runs = prompt_diff("line one\nline two", new)
        assert "".join(t for op, t in runs if op != "delete") == new


class TestFamilyView:
    def test_it_shows_the_chain_up_and_the_remixes_below_nested(self, alice_client, family) -> None:
        me = family["me"]
        r = alice_client.get(f"/videos/{me.pk}/family/")
        assert r.status_code == 200
        body = r.content.decode()
        for name in ("root", "child", "me", "kid1", "kid2", "grandkid"):
            assert f'id="family-{family[name].pk}"' in body, name
        assert f'id="family-{family["sibling"].pk}"' not in body  # not in this line
        assert f'id="family-{family["stranger"].pk}"' not in body
        # Nested: each <li> closes after its children, so the order of opening tags is the tree.
        order = [int(n) for n in re.findall(r'id="family-(\d+)"', body)]
        assert order == [family[n].pk for n in ("root", "child", "me", "kid1", "grandkid", "kid2")]
        grandkid_at = body.index(f'id="family-{family["grandkid"].pk}"')
        assert body.count("<ul>", body.index(f'id="family-{family["root"].pk}"'), grandkid_at) == 4
        assert '<li class="node current"' in body and "(this video)" in body

    def test_each_prompt_is_diffed_against_its_parent(self, alice_client, family) -> None:
        body = alice_client.get(f"/videos/{family['me'].pk}/family/").content.decode()
        assert re.search(r"<ins>\s*black\s*</ins>", body)
        assert re.search(r"<ins>\s*at night</ins>", body)
        assert "<del>cat</del><ins>dog</ins>" in body  # grandkid against kid1
        assert 'class="badge failed"' in body and 'class="badge completed"' in body

    def test_prompts_are_escaped_in_the_diff(self, alice_client, provider, alice) -> None:
        root = make(provider, alice, "safe")
        evil = make(provider, alice, 'safe <script>alert("x")</script>', root)
        body = alice_client.get(f"/videos/{evil.pk}/family/").content.decode()
        assert "<script>alert" not in body and "&lt;script&gt;" in body

    def test_queries_grow_with_depth_not_with_size(self, alice_client, provider, alice) -> None:
        root = make(provider, alice, "root")

        def queries() -> int:
            with CaptureQueriesContext(connection) as ctx:
                alice_client.get(f"/videos/{root.pk}/family/")
            return len(ctx.captured_queries)

        make(provider, alice, "one", root)
        few = queries()
        for i in range(20):
            make(provider, alice, f"kid {i}", root)
        assert queries() == few

    def test_a_deep_chain_renders(self, alice_client, provider, alice) -> None:
        video = make(provider, alice, "generation 0")
        for i in range(1, 30):
            video = make(provider, alice, f"generation {i}", video)
        r = alice_client.get(f"/videos/{video.pk}/family/")
        assert r.status_code == 200 and r.content.count(b'<li class="node') == 30

    def test_a_source_cycle_does_not_loop(self, alice_client, provider, alice) -> None:
        a = make(provider, alice, "a")
        b = make(provider, alice, "b", a)
        Video.objects.filter(pk=a.pk).update(source=b)  # only possible by hand, in the admin
        assert alice_client.get(f"/videos/{b.pk}/family/").status_code == 200

    def test_the_detail_page_links_to_family_and_compare(self, alice_client, family) -> None:
        me = family["me"]
        body = alice_client.get(me.get_absolute_url()).content.decode()
        assert f'href="/videos/{me.pk}/family/"' in body
        assert f'href="/compare/?ids={family["child"].pk},{me.pk}"' in body
        assert f"/compare/?ids={me.pk},{family['kid1'].pk},{family['kid2'].pk}" in body


class TestCompare:
    def test_two_archived_versions_play_side_by_side(
        self, alice_client, alice, completed, simulator, django_capture_on_commit_callbacks
    ) -> None:
        with django_capture_on_commit_callbacks(execute=True):
            remix = submit_remix(
                user=alice, source=completed, prompt="the same, in sepia", key=uuid.uuid4()
            )
        drive(lambda: all(Video.objects.get(pk=pk).playable for pk in (completed.pk, remix.pk)))
        r = alice_client.get(f"/compare/?ids={completed.pk},{remix.pk}")
        assert r.status_code == 200
        body = r.content.decode()
        assert body.count("<video ") == 2 and "data-compare" in body and "js/compare." in body
        assert " controls" not in body  # one shared control, not one per player
        assert body.count("muted") >= 1  # only the first one has sound
        assert "the same, in sepia" in body and "<ins>" in body  # diffed against the first
        for name in ("model", "size", "seconds"):
            assert f"<dt>{name}</dt>" in body
        # The players' files are served (with Range, so the shared seek bar works).
        player = re.search(r'<video [^>]*src="([^"]+)"', body)
        assert player is not None
        src = player[1]
        part = alice_client.get(src, headers={"Range": "bytes=0-99"})
        assert part.status_code == 206 and part["Content-Type"] == "video/mp4"

    def test_ids_may_repeat_or_come_as_a_list(self, alice_client, family) -> None:
        a, b = family["root"].pk, family["child"].pk
        r = alice_client.get(f"/compare/?ids={a}&ids={b}&ids={a},x,")
        assert r.status_code == 200 and [v["video"].pk for v in r.context["rows"]] == [a, b]

    def test_fewer_than_two_videos_is_explained(self, alice_client, family) -> None:
        for query in ("", f"?ids={family['root'].pk}", "?ids=999999,888888"):
            r = alice_client.get(f"/compare/{query}")
            assert r.status_code == 400 and b"Choose two to 6 videos" in r.content

    def test_videos_without_files_are_shown_without_a_player(self, alice_client, family) -> None:
        r = alice_client.get(f"/compare/?ids={family['root'].pk},{family['kid2'].pk}")
        assert r.status_code == 200
        assert b"<video " not in r.content and b"no archived video" in r.content
        assert b"0 of 2 have archived files" in r.content
