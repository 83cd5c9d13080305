"""Reads only: the table, catalog and cost, lineage, compare, batches, spend and usage."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property
from typing import Any

from django.contrib.auth.models import User
from django.db import connection
from django.db.models import Q, QuerySet

from jobs.batch_reads import (  # noqa: F401  # re-exported: callers read them from here
    BatchRow,
    BatchSummary,
    batch_rows,
    batch_videos,
    batches_for_list,
    charged,
    retry_key,
    summarise_batch,
    with_retries,
)
from jobs.lib.paging import COUNT_LIMIT
from jobs.lib.prompts import PromptDiff, prompt_diff
from jobs.models import CatalogEntry, Profile, Provider, Video
from jobs.spend_reads import (  # noqa: F401  # re-exported: callers read them from here
    BudgetLine,
    Usage,
    all_budget_lines,
    budget_lines,
    least_left,
    spent,
    usage,
)

# Each reversed sort is the exact reverse of its forward one, so the index that serves the
# forward order (video_recent, video_status_recent) serves it too, read backwards.
SORTS = {
    "newest": ("-requested_at", "-id"),
    "oldest": ("requested_at", "id"),
    "status": ("status", "-requested_at", "-id"),
    "-status": ("-status", "requested_at", "id"),
    "model": ("model", "-requested_at", "-id"),
    "-model": ("-model", "requested_at", "id"),
}
SORT_LABELS = {
    "newest": "Newest first",
    "oldest": "Oldest first",
    "status": "Status A–Z",
    "-status": "Status Z–A",
    "model": "Model A–Z",
    "-model": "Model Z–A",
}
# The table's sortable headers: the first click sorts by the first key, the next reverses it.
SORT_COLUMNS = {
    "model": ("model", "-model"),
    "status": ("status", "-status"),
    "created": ("newest", "oldest"),
}
DESCENDING = {"newest", "-status", "-model"}
# The table's review filter: URL value -> Video.review_state ("none": not in review, stored "").
REVIEW_FILTERS = {
    **{v: v for v in Video.ReviewState.values if v},
    "none": Video.ReviewState.NONE,
}
# "#12" is video 12 only; a bare number is video 12 or a prompt containing it.
ID_QUERY = re.compile(r"#?(\d{1,18})")


@dataclass(frozen=True)
class TableFilters:
    status: str = ""
    model: str = ""
    mine: bool = False
    q: str = ""
    sort: str = "newest"
    review: str = ""  # a Video.ReviewState value, or "none" for videos not in review
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_query(cls, params: dict[str, str]) -> TableFilters:
        status = params.get("status", "")
        if status not in {*Video.Status.values, "waiting", ""}:
            status = ""
        sort = params.get("sort", "newest")
        review = params.get("review", "")
        return cls(
            status=status,
            model=params.get("model", "")[:100],
            mine=params.get("mine") == "1",
            q=params.get("q", "")[:200].strip(),
            sort=sort if sort in SORTS else "newest",
            review=review if review in REVIEW_FILTERS else "",
        )


def videos_for_table(*, user: User, filters: TableFilters) -> QuerySet[Video]:
    """Everything the table shows in one query (plus the paginator's count)."""
    # with_retries joins each row's charge (the cost on a gallery card) and its retry's pk.
    qs = with_retries(Video.objects.select_related("owner", "source", "provider"))
    if filters.mine:
        qs = qs.filter(owner=user)
    if filters.status == "waiting":
        qs = qs.filter(submission__in=Video.WAITING)
    elif filters.status:
        qs = qs.filter(status=filters.status)
    if filters.model:
        qs = qs.filter(model=filters.model)
    if filters.q:
        qs = qs.filter(search_query(filters.q))
    if filters.review:  # index video_review_recent
        qs = qs.filter(review_state=REVIEW_FILTERS[filters.review])
    return qs.order_by(*SORTS[filters.sort])


# How far the table's pager counts (jobs/lib/paging.py): a search is checked row by row (its
# trigram index on PostgreSQL only narrows the candidates), so counting 10,000 matches of a
# common word would read 30,000 prompts; 1,000 are enough to say "1,000+ match".
SEARCH_COUNT_LIMIT = 1_000


def count_limit(filters: TableFilters) -> int:
    return SEARCH_COUNT_LIMIT if filters.q else COUNT_LIMIT


def search_query(q: str) -> Q:
    """The search box: a prompt's words, a provider id ("video_abc…") or a "#number"."""
    number = ID_QUERY.fullmatch(q)
    if number and q.startswith("#"):
        return Q(pk=int(number.group(1)))
    # istartswith, not icontains: "12" must not match every hex id that happens to hold a 12.
    found = Q(prompt__icontains=q) | Q(video_id__istartswith=q)
    return found | Q(pk=int(number.group(1))) if number else found


def models_in_use(current: str = "") -> list[str]:
    """The table's model menu: the catalogs' models (a small table), not a DISTINCT over every
    video, plus the one filtered by (`?model=` of a model no catalog offers any more)."""
    models = list(CatalogEntry.objects.order_by("model").values_list("model", flat=True).distinct())
    return models if not current or current in models else sorted([*models, current])


def table_view(user: User) -> str:
    """The jobs list's view for `user`: the table until they pick another (no row needed)."""
    view = Profile.objects.filter(user=user).values_list("view", flat=True).first()
    return view or Profile.View.TABLE


MAX_FAMILY_DEPTH = 50  # a guard against a cycle in hand-edited `source` links
MAX_FAMILY_SIZE = 500  # the page stays readable and the query count bounded
MAX_COMPARE = 6


def catalog(providers: Iterable[Provider]) -> dict[str, dict[str, Any]]:
    """{provider pk: {"name", "models": {model: {size: {"seconds": [...], "price": "0.10"}}}}}.

    The create form's menus (`create_menu`) and its validation read it.
    """
    providers = list(providers)
    out: dict[str, dict[str, Any]] = {str(p.pk): {"name": p.name, "models": {}} for p in providers}
    entries = CatalogEntry.objects.filter(provider__in=providers).order_by("model", "size")
    for entry in entries:
        sizes = out[str(entry.provider_id)]["models"].setdefault(entry.model, {})
        sizes[entry.size] = {
            "seconds": sorted((str(s) for s in entry.seconds), key=_seconds_key),
            "price": str(entry.price_per_second),
        }
    return out


@dataclass(frozen=True)
class CreateMenu:
    """What the create form offers for one choice of provider, model, size and length."""

    provider: str
    model: str
    size: str
    seconds: str
    models: list[str]
    sizes: list[str]
    lengths: list[str]
    price: Decimal | None  # per second, from the catalog

    @property
    def cost(self) -> Decimal | None:
        if self.price is None or not self.seconds.isdigit():
            return None
        return self.price * int(self.seconds)


def create_menu(catalog: dict[str, dict[str, Any]], data: Mapping[str, Any]) -> CreateMenu:
    """The choices that fit what was picked (`data`), falling back to the first valid ones.

    The catalog, its combinations and the cost live here only; the create form's menus are
    re-rendered from this whenever one of them changes.
    """
    provider = _pick(data, "provider", list(catalog))
    by_model = catalog.get(provider, {}).get("models", {})
    model = _pick(data, "model", sorted(by_model))
    by_size = by_model.get(model, {})
    size = _pick(data, "size", list(by_size))
    spec = by_size.get(size, {"seconds": [], "price": None})
    seconds = _pick(data, "seconds", spec["seconds"])
    return CreateMenu(
        provider=provider,
        model=model,
        size=size,
        seconds=seconds,
        models=sorted(by_model),
        sizes=list(by_size),
        lengths=list(spec["seconds"]),
        price=Decimal(spec["price"]) if spec["price"] is not None else None,
    )


def _pick(data: Mapping[str, Any], name: str, allowed: list[str]) -> str:
    value = str(data.get(name) or "")
    return value if value in allowed else (allowed[0] if allowed else "")


def _seconds_key(value: str) -> tuple[int, str]:
    return (int(value), value) if value.isdigit() else (10**6, value)


def estimate_cost(provider: Provider, model: str, size: str, seconds: str) -> Decimal | None:
    """Price per second from the catalog × seconds; None when the catalog does not say."""
    entry = CatalogEntry.objects.filter(provider=provider, model=model, size=size).first()
    if entry is None:
        return None
    try:
        return entry.price_per_second * int(seconds)
    except ValueError:  # extensions report stitched totals as free strings
        return None


# What an extension may add where the catalog names no clip lengths for the source's model and
# size: the new segment's lengths the Videos API documents (4 to 20 seconds).
EXTENSION_SECONDS = ("4", "8", "12", "16", "20")
EXTEND_MAX_SECONDS = 20


def extension_menu(source: Video) -> list[tuple[str, Decimal | None]]:
    """The seconds an extension of `source` may add, each with its estimated cost.

    Its model's clip lengths at its size in the catalog (up to EXTEND_MAX_SECONDS), or else the
    documented ones. Only the added seconds are generated, so only they are priced.
    """
    entry = CatalogEntry.objects.filter(
        provider_id=source.provider_id, model=source.model, size=source.size
    ).first()
    named = {str(s) for s in entry.seconds} if entry else set()
    lengths = sorted(
        (s for s in named if s.isdigit() and 0 < int(s) <= EXTEND_MAX_SECONDS), key=int
    )
    if not lengths:
        lengths = list(EXTENSION_SECONDS)
    return [(s, entry.price_per_second * int(s) if entry else None) for s in lengths]


def extension_lengths(source: Video) -> list[str]:
    return [seconds for seconds, _ in extension_menu(source)]


def creatable_providers() -> QuerySet[Provider]:
    return Provider.objects.filter(enabled=True, can_create=True)


# --- lineage ---------------------------------------------------------------------------------


@dataclass
class FamilyNode:
    video: Video
    parent_prompt: str | None  # None for the root: nothing to diff against
    children: list[FamilyNode] = field(default_factory=list)
    is_current: bool = False

    @cached_property
    def diff(self) -> PromptDiff:
        # An edit's or extension's prompt says what to change or add, not the whole scene:
        # against its parent's it would read as everything deleted and rewritten.
        if self.parent_prompt is None or self.video.kind in (Video.Kind.EDIT, Video.Kind.EXTENSION):
            return PromptDiff((("equal", self.video.prompt),))
        return prompt_diff(self.parent_prompt, self.video.prompt)


@dataclass
class Family:
    current: Video
    ancestors: list[Video]  # root first, parent last
    tree: FamilyNode  # the root, with the chain down to `current` and everything below it
    size: int
    truncated: bool


# The source chain upwards (negative depths) and every video below (positive depths, breadth
# first), in one recursive query that SQLite and PostgreSQL both run. Each video has one
# source, so a hand-made cycle below `current` must pass through it: `id <> current` ends it;
# one above is cut by the depth bound and the walk in family(). The LIMIT stops PostgreSQL's
# walk once enough rows are read; SQLite stops only at a LIMIT inside the recursive part.
FAMILY_SQL = """
WITH RECURSIVE
  up(id, source_id, depth) AS (
    SELECT id, source_id, 0 FROM {table} WHERE id = %(pk)s
    UNION ALL
    SELECT v.id, v.source_id, up.depth + 1 FROM {table} v JOIN up ON v.id = up.source_id
    WHERE up.depth < %(depth)s AND v.id <> %(pk)s
  ),
  down(id, depth) AS (
    SELECT id, 0 FROM {table} WHERE id = %(pk)s
    UNION ALL
    SELECT v.id, down.depth + 1 FROM {table} v JOIN down ON v.source_id = down.id
    WHERE down.depth < %(depth)s AND v.id <> %(pk)s{inner_limit}
  )
SELECT id, 0 - depth FROM up WHERE depth > 0
UNION ALL
SELECT id, depth FROM (SELECT id, depth FROM down WHERE depth > 0 LIMIT %(size)s) below
"""


def _family_ids(video: Video) -> list[tuple[int, int]]:
    """(pk, depth) of the family around `video`: ancestors < 0 < descendants (one query)."""
    sqlite = connection.vendor == "sqlite"
    sql = FAMILY_SQL.format(
        table=connection.ops.quote_name(Video._meta.db_table),
        inner_limit=" LIMIT %(inner)s" if sqlite else "",
    )
    # One row more than fits says that some were left out; SQLite's inner count has the root.
    size = MAX_FAMILY_SIZE + 1
    params = {"pk": video.pk, "depth": MAX_FAMILY_DEPTH, "size": size, "inner": size + 1}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [(int(pk), int(depth)) for pk, depth in cursor.fetchall()]


def family(video: Video) -> Family:
    """The source chain up to the root, then every remix, edit and extension below `video`, as
    one nested tree.

    Two queries whatever the family's size or depth: the recursive walk over `source` for the
    ids, then the videos with their owners and providers.
    """
    found = _family_ids(video)
    rows = Video.objects.select_related("owner", "provider").in_bulk([pk for pk, _ in found])
    # Upwards: nearest first, stopping at the first repeat (a cycle above `current`).
    ancestors: list[Video] = []
    seen = {video.pk}
    for pk, _depth in sorted((f for f in found if f[1] < 0), key=lambda f: -f[1]):
        if pk in seen or pk not in rows:
            break
        ancestors.append(rows[pk])
        seen.add(pk)
    ancestors.reverse()

    # The chain, root first, each node holding the next as its only child.
    chain: list[FamilyNode] = []
    for v in ancestors:
        chain.append(FamilyNode(v, chain[-1].video.prompt if chain else None))
    current = FamilyNode(video, ancestors[-1].prompt if ancestors else None, is_current=True)
    for upper, lower in zip(chain, [*chain[1:], current], strict=False):
        upper.children.append(lower)

    # Below `current`, breadth first (a source always comes before its remixes), each node
    # under its source in the order made, up to MAX_FAMILY_SIZE in all.
    room = MAX_FAMILY_SIZE - len(chain) - 1
    below = sorted(
        ((depth, rows[pk]) for pk, depth in found if depth > 0 and pk in rows and pk not in seen),
        key=lambda item: (item[0], item[1].requested_at, item[1].pk),
    )
    truncated = len(below) > room
    nodes = {video.pk: current}
    for _depth, child in below[:room]:
        parent = nodes.get(child.source_id)  # type: ignore[arg-type]
        if parent is not None:  # its source was cut off by the size bound
            nodes[child.pk] = FamilyNode(child, parent.video.prompt)
            parent.children.append(nodes[child.pk])
    size = len(chain) + len(nodes)
    root = chain[0] if chain else current
    return Family(current=video, ancestors=ancestors, tree=root, size=size, truncated=truncated)


# --- compare ---------------------------------------------------------------------------------


MAX_ID = 2**63 - 1  # the largest value a BigAutoField holds (SQLite raises OverflowError above)


def parse_ids(values: Iterable[str], limit: int = MAX_COMPARE) -> list[int]:
    """`?ids=1,2,3` or `?ids=1&ids=2`, in the order given, without repeats or junk.

    Junk includes non-ASCII digits ("²".isdigit() is true, int() refuses it), numbers too long
    for int() (over 4,300 digits) and ids beyond any primary key: each would be a 500.
    """
    ids: list[int] = []
    for value in values:
        for part in value.split(","):
            part = part.strip()
            if not (part.isascii() and part.isdigit() and len(part) <= 19):
                continue
            number = int(part)
            if number <= MAX_ID and number not in ids:
                ids.append(number)
                if len(ids) >= limit:  # the rest is never looked at
                    return ids
    return ids[:limit]


def videos_for_compare(ids: list[int]) -> list[Video]:
    found = Video.objects.select_related("provider", "owner", "source", "charge").in_bulk(ids)
    return [found[i] for i in ids if i in found]
