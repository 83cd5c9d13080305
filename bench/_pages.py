"""A team's history in bulk, for bench/g2_pages.py and tests/services/test_page_counts.py.

`populate(n)` writes `n` videos the way a team accumulates them: a steady rate (RATE_PER_DAY)
back from now, so 1,000 videos are the last ten days and 100,000 the last 33 months, each with
its charge, a third of them remixes of a recent video, some in batches, some failed, a few in
flight, a history row for every tenth. Beside them, the same fixed cast at every size: 49
users in 6 teams with 55 budgets, a 201-video family with 2.8 KB prompts, collections, reviews
waiting for "boss" and audit entries. Everything is bulk-inserted (about 20 s for 100,000 rows
on PostgreSQL); nothing calls a provider (its base URL is port 9).
"""

from __future__ import annotations

import itertools
import random
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import quote_plus

if TYPE_CHECKING:
    from django.contrib.auth.models import Group, User

    from jobs.models import Provider, Video

RATE_PER_DAY = 100
USERS = 49
TEAMS = 6
FAMILY = 201  # videos in the big family: a root and 200 remixes below it
FAMILY_PROMPT = 2_800  # characters per prompt in it
WORDS = (
    "harbour dawn gulls mist lantern market square balloon red paper boat river cathedral "
    "neon alley rain umbrella tram bicycle orchard blossom fox meadow glacier aurora desert "
    "caravan lighthouse storm cliff violin dancer mirror corridor velvet amber copper clock "
    "tower garden fountain statue snow owl forest moss stone bridge ferry island coral reef "
    "whale kite festival drum parade carnival mask canal gondola sunset skyline rooftop"
).split()
# Beside the scene words (each in about one prompt in ten), a long tail: 3,000 made-up words
# drawn with Zipf-like frequencies, as in real prompts, where most words are rare.
SYLLABLES = "ka lo mi ra te su no vi pe da zo ri an el or ul is ba"
TAIL = sorted({a + b + c for a in SYLLABLES.split() for b in SYLLABLES.split()
               for c in ("", *SYLLABLES.split()[:8])})[:3_000]  # fmt: skip
TAIL_WEIGHTS = list(itertools.accumulate(1 / rank for rank in range(1, len(TAIL) + 1)))
# What people search for: a common scene word, tail words of falling frequency, a phrase.
SEARCH_TERMS = ("lighthouse", *(next(w for w in TAIL[r:] if len(w) == 6) for r in (49, 299, 1499)),
                "copper clock", next(w for w in TAIL[99:] if len(w) == 6))  # fmt: skip


@dataclass
class Cast:
    """What the pages are asked about: ids to vary requests over, and who asks."""

    boss: User  # staff and superuser: the usage page for everybody, the admin, the audit log
    provider: Provider
    owners: list[User]
    teams: list[Group]
    rng: random.Random
    made: int = 0  # videos in the history so far
    videos: list[int] = field(default_factory=list)  # every video's pk, oldest first
    completed: list[int] = field(default_factory=list)  # archived ones (compare needs them)
    family: list[int] = field(default_factory=list)  # the big family, root first
    batches: list[int] = field(default_factory=list)
    collections: list[int] = field(default_factory=list)


def _word(rng: random.Random) -> str:
    if rng.random() < 0.3:
        return rng.choice(WORDS)
    return rng.choices(TAIL, cum_weights=TAIL_WEIGHTS)[0]


def _prompt(rng: random.Random, words: int) -> str:
    return " ".join(_word(rng) for _ in range(words)).capitalize() + "."


def populate(n: int, *, seed: int = 1) -> Cast:
    """`n` videos and the fixed cast (see the module docstring), in the current database."""
    cast = setup_cast(seed=seed)
    add_history(cast, n)
    add_cast(cast)
    return cast


def setup_cast(*, seed: int = 1) -> Cast:
    """The provider and its catalog, boss, the members, their teams and 55 budgets."""
    from django.contrib.auth.models import Group, User

    from jobs.models import Budget, Provider
    from jobs.services.demo import seed_catalog

    provider = Provider.objects.create(
        name="Offline", base_url="http://127.0.0.1:9/v1", api_key_env="SIMULATOR_API_KEY"
    )
    seed_catalog(provider)
    boss = User.objects.create_superuser("boss", password=None)
    users = User.objects.bulk_create(
        [User(username=f"member{i:02d}", is_active=True) for i in range(USERS)]
    )
    teams = Group.objects.bulk_create([Group(name=f"team {t}") for t in range(TEAMS)])
    through = User.groups.through
    through.objects.bulk_create(
        [through(user_id=u.pk, group_id=teams[i % TEAMS].pk) for i, u in enumerate(users)]
        + [through(user_id=u.pk, group_id=teams[(i + 1) % TEAMS].pk) for i, u in enumerate(users)]
    )
    Budget.objects.bulk_create(
        [Budget(user=u, monthly_limit=Decimal(200 + i)) for i, u in enumerate(users)]
        + [Budget(group=t, monthly_limit=Decimal(2_000)) for t in teams]
    )
    return Cast(boss=boss, provider=provider, owners=[*users, boss], teams=teams,
                rng=random.Random(seed))  # fmt: skip


def _video(cast: Cast, at: Any, source_id: int | None, prompt: str, *, in_flight: bool) -> Video:
    from jobs.models import Video

    rng = cast.rng
    failed = not in_flight and rng.random() < 0.06
    done = not (in_flight or failed)
    return Video(
        provider=cast.provider,
        owner=cast.owners[rng.randrange(len(cast.owners))],
        video_id=f"video_{uuid.UUID(int=rng.getrandbits(128)).hex}",
        model=rng.choice(("sora-2", "sora-2", "sora-2-pro")),
        status="in_progress" if in_flight else ("failed" if failed else "completed"),
        progress=50 if in_flight else (30 if failed else 100),
        prompt=prompt,
        size=rng.choice(("720x1280", "1280x720")),
        seconds=rng.choice(("4", "8", "12")),
        submission=Video.Submission.SUBMITTED,
        source_id=source_id,
        kind=Video.Kind.REMIX if source_id else Video.Kind.CREATE,
        error_code="moderation_blocked" if failed else "",
        error_message="Blocked by moderation." if failed else "",
        asset_state=Video.Assets.ARCHIVED
        if done
        else (Video.Assets.PENDING if in_flight else Video.Assets.NONE),
        video_file=f"archive/{at:%Y%m%d%H%M%S%f}/video.mp4" if done else "",
        thumbnail_file=f"archive/{at:%Y%m%d%H%M%S%f}/thumbnail.webp" if done else "",
        cost_estimate=Decimal("0.40"),
        requested_at=at,
        created_at=at,
        completed_at=at + timedelta(seconds=40) if done else None,
    )


def add_history(cast: Cast, n: int, *, in_flight: int = 5, chunk: int = 2_000) -> None:
    """`n` more videos, older than those already made, at RATE_PER_DAY, each with its charge
    (a tenth with a history row, half with an audit entry); the newest `in_flight` of them
    still rendering. A third are remixes of one of the 200 made just before them."""
    from django.utils import timezone

    from jobs.models import AuditEvent, Charge, StatusChange, Video

    rng = cast.rng
    now = timezone.now() - timedelta(minutes=30)
    step = timedelta(days=1) / RATE_PER_DAY
    mine: list[int] = []
    chunk = max(20, min(chunk, n // 10))  # remixes point into earlier chunks: have a few
    for start in range(0, n, chunk):
        rows = []
        for i in range(start, min(n, start + chunk)):
            at = now - step * (cast.made + n - i)
            remix = mine and rng.random() < 0.33
            source = mine[-rng.randint(1, min(200, len(mine)))] if remix else None
            prompt = _prompt(rng, rng.randint(12, 40))
            rows.append(_video(cast, at, source, prompt, in_flight=i >= n - in_flight))
        made = Video.objects.bulk_create(rows)
        mine += [v.pk for v in made]
        cast.completed += [v.pk for v in made if v.asset_state == Video.Assets.ARCHIVED]
        Charge.objects.bulk_create(
            [
                Charge(
                    video=v,
                    owner_id=v.owner_id,
                    amount=Decimal(0) if v.status == "failed" else v.cost_estimate,
                    basis=Charge.Basis.NONE if v.status == "failed" else Charge.Basis.ESTIMATE,
                    at=v.requested_at,
                    provider_name=cast.provider.name,
                    model=v.model,
                    size=v.size,
                    seconds=v.seconds,
                    prompt=v.prompt[:200],
                )
                for v in made
            ]
        )
        StatusChange.objects.bulk_create(
            [
                StatusChange(video=v, from_status="", to_status=v.status, at=v.requested_at)
                for v in made[::10]
            ]
        )
        AuditEvent.objects.bulk_create(
            [
                AuditEvent(
                    at=v.requested_at,
                    actor_id=v.owner_id,
                    action=AuditEvent.Action.SUBMITTED,
                    target_type="video",
                    target_id=str(v.pk),
                    target_repr=f"#{v.pk}",
                )
                for v in made[::2]
            ]
        )
    cast.videos = mine + cast.videos
    cast.made += n


def add_cast(cast: Cast) -> None:
    """Batches, the big family, collections and reviews: the same at every size, all recent."""
    from django.utils import timezone

    from jobs.models import Batch, Collection, CollectionItem, Review, Video

    rng = cast.rng
    now = timezone.now()
    # Batches: groups of five of the newest remixes.
    recent = Video.objects.filter(source__isnull=False).order_by("-requested_at")[:100]
    members = list(recent.values_list("pk", "owner_id", "source_id"))
    for k in range(0, len(members) - 4, 5):
        group = members[k : k + 5]
        batch = Batch.objects.create(owner_id=group[0][1], source_id=group[0][2])
        Video.objects.filter(pk__in=[m[0] for m in group]).update(batch=batch)
        cast.batches.append(batch.pk)

    # The big family: a chain of 20 generations, the rest spread under its first 40 videos.
    at = now - timedelta(minutes=20)
    base = _prompt(rng, FAMILY_PROMPT // 6)[:FAMILY_PROMPT]
    prompts: dict[int, str] = {}
    for k in range(FAMILY):
        if k == 0:
            parent, prompt = None, base
        else:
            parent = cast.family[k - 1] if k < 20 else rng.choice(cast.family[:40])
            words = prompts[parent].split(" ")
            for _ in range(rng.randint(1, 4)):  # a few words changed per remix
                words[rng.randrange(len(words))] = rng.choice(WORDS)
            prompt = " ".join(words)
        row = _video(cast, at + timedelta(seconds=k), parent, prompt, in_flight=False)
        row.status, row.progress, row.asset_state = "completed", 100, Video.Assets.ARCHIVED
        row.error_code = row.error_message = ""
        made = Video.objects.bulk_create([row])[0]
        cast.family.append(made.pk)
        prompts[made.pk] = prompt
    cast.completed += cast.family

    # Collections (30 videos each, half shared with a team), 40 reviews waiting for boss.
    for c in range(12):
        owner = cast.owners[c % len(cast.owners)]
        team = cast.teams[c % len(cast.teams)] if c % 2 else None
        collection = Collection.objects.create(name=f"reel {c}", owner=owner, team=team)
        picks = rng.sample(cast.completed, min(30, len(cast.completed)))
        CollectionItem.objects.bulk_create(
            [CollectionItem(collection=collection, video_id=pk, added_by=owner) for pk in picks]
        )
        cast.collections.append(collection.pk)
    waiting = rng.sample(cast.completed, min(40, len(cast.completed)))
    Review.objects.bulk_create(
        [Review(video_id=pk, reviewer=cast.boss, requested_by=cast.owners[0]) for pk in waiting]
    )


SORTS = ("newest", "oldest", "status", "-status", "model", "-model")


def page_urls(cast: Cast, k: int) -> dict[str, str]:
    """The k-th variant of each page G2 measures: other videos, pages, sorts and terms for
    each k, so no two requests ask for the same thing (pages 2..40 of the table)."""
    rng = random.Random(k)
    some = lambda pool: pool[rng.randrange(len(pool))]  # noqa: E731
    picks = ",".join(str(some(cast.completed)) for _ in range(3))
    from django.utils import timezone

    total = cast.made + len(cast.family)

    def page(per_page: int, rows: int = total) -> int:  # 2..40, within what there is
        return rng.randint(min(2, rows // per_page + 1), max(1, min(40, rows // per_page)))

    month = (timezone.now() - timedelta(days=31 * (k % 3))).strftime("%Y-%m")
    return {
        "detail": f"/videos/{some(cast.videos)}/",
        "family": f"/videos/{cast.family[k % 3]}/family/",  # the root, then near it: 199-201
        "usage": f"/usage/?month={month}",  # this month, then the ones before
        "compare": f"/compare/?ids={picks}",
        "batch": f"/batches/{some(cast.batches)}/",
        "batches": "/batches/?mine=0",
        **{f"table sort={sort}": f"/?sort={sort}&page={page(25)}&view=table" for sort in SORTS},
        "table search": f"/?q={quote_plus(SEARCH_TERMS[k % len(SEARCH_TERMS)])}&view=table",
        "collections": "/collections/",
        "collection": f"/collections/{some(cast.collections)}/",
        "reviews": "/reviews/",
        "audit": f"/audit/?page={page(50, cast.made // 2)}",
        "admin changelist": f"/admin/jobs/video/?p={page(100)}",
        # a remix each time (its source is one more query than an original's)
        "admin change": f"/admin/jobs/video/{cast.family[1 + k % (len(cast.family) - 1)]}/change/",
    }
