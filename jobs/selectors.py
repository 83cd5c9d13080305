"""Reads only: the table, catalog and cost, lineage, compare, batches, spend and usage."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import Group, User
from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import TruncMonth

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
from jobs.lib.months import month_start, next_month
from jobs.lib.prompts import prompt_diff
from jobs.models import Budget, CatalogEntry, Charge, Profile, Provider, Video

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


def search_query(q: str) -> Q:
    """The search box: a prompt's words, a provider id ("video_abc…") or a "#number"."""
    number = ID_QUERY.fullmatch(q)
    if number and q.startswith("#"):
        return Q(pk=int(number.group(1)))
    # istartswith, not icontains: "12" must not match every hex id that happens to hold a 12.
    found = Q(prompt__icontains=q) | Q(video_id__istartswith=q)
    return found | Q(pk=int(number.group(1))) if number else found


def models_in_use() -> list[str]:
    return list(Video.objects.order_by().values_list("model", flat=True).distinct())


def table_view(user: User) -> str:
    """The jobs list's view for `user`: the table until they pick another (no row needed)."""
    view = Profile.objects.filter(user=user).values_list("view", flat=True).first()
    return view or Profile.View.TABLE


# Money is the Charge ledger (jobs/models/spend.py): one row per job, written when it is
# recorded (the estimate), set to the provider's figure where it gives one and to zero when the
# job fails or is cancelled before it ran; deleting a video leaves its charge in place.

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

    @property
    def diff(self) -> list[tuple[str, str]]:
        # An edit's or extension's prompt says what to change or add, not the whole scene:
        # against its parent's it would read as everything deleted and rewritten.
        if self.parent_prompt is None or self.video.kind in (Video.Kind.EDIT, Video.Kind.EXTENSION):
            return [("equal", self.video.prompt)]
        return prompt_diff(self.parent_prompt, self.video.prompt)


@dataclass
class Family:
    current: Video
    ancestors: list[Video]  # root first, parent last
    tree: FamilyNode  # the root, with the chain down to `current` and everything below it
    size: int
    truncated: bool


def family(video: Video) -> Family:
    """The source chain up to the root, then every remix, edit and extension below `video`, as
    one nested tree.

    One query per generation (the chain upwards, then each level of remixes downwards), so the
    cost grows with the depth of the family, not with its size.
    """
    related = ("owner", "provider")
    ancestors: list[Video] = []
    seen = {video.pk}
    parent_id = video.source_id
    while parent_id and parent_id not in seen and len(ancestors) < MAX_FAMILY_DEPTH:
        parent = Video.objects.select_related(*related).filter(pk=parent_id).first()
        if parent is None:
            break
        ancestors.append(parent)
        seen.add(parent.pk)
        parent_id = parent.source_id
    ancestors.reverse()

    # The chain, root first, each node holding the next as its only child.
    chain: list[FamilyNode] = []
    for v in ancestors:
        chain.append(FamilyNode(v, chain[-1].video.prompt if chain else None))
    current = FamilyNode(video, ancestors[-1].prompt if ancestors else None, is_current=True)
    for upper, lower in zip(chain, [*chain[1:], current], strict=False):
        upper.children.append(lower)

    # Remixes below `current`, generation by generation.
    size, truncated = len(chain) + 1, False
    frontier = {video.pk: current}
    for _ in range(MAX_FAMILY_DEPTH):
        if not frontier:
            break
        level = list(
            Video.objects.select_related(*related)
            .filter(source_id__in=list(frontier))
            .exclude(pk__in=seen)
            .order_by("requested_at", "pk")[: MAX_FAMILY_SIZE - size + 1]
        )
        if size + len(level) > MAX_FAMILY_SIZE:
            level, truncated = level[: MAX_FAMILY_SIZE - size], True
        nxt: dict[int, FamilyNode] = {}
        for child in level:
            parent_node = frontier[child.source_id]  # type: ignore[index]
            node = FamilyNode(child, parent_node.video.prompt)
            parent_node.children.append(node)
            nxt[child.pk] = node
            seen.add(child.pk)
        size += len(level)
        frontier = nxt
        if truncated:
            break
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


# --- spending and budgets --------------------------------------------------------------------


def spent(*, since: datetime, user: Any = None, group_id: int | None = None) -> Decimal:
    """The month's charges, from the ledger: deleting a video does not lower it."""
    qs = Charge.objects.filter(at__gte=since)
    if user is not None:
        qs = qs.filter(owner=user)
    if group_id is not None:
        qs = qs.filter(owner__groups=group_id)
    return qs.aggregate(total=Sum("amount"))["total"] or Decimal("0")


@dataclass(frozen=True)
class BudgetLine:
    budget: Budget
    label: str  # "You" or "Team “editors”"
    spent: Decimal

    @property
    def limit(self) -> Decimal:
        return self.budget.monthly_limit

    @property
    def left(self) -> Decimal:
        return max(self.limit - self.spent, Decimal("0"))

    @property
    def percent(self) -> int:
        return min(100, round(self.spent / self.limit * 100)) if self.limit else 100


def budget_lines(user: Any) -> list[BudgetLine]:
    """The budgets that apply to `user` this month (their own, then each of their teams)."""
    if not getattr(user, "is_authenticated", False):
        return []
    since = month_start()
    lines = []
    for budget in (
        Budget.objects.filter(Q(user=user) | Q(group__in=user.groups.all()))
        .select_related("group")
        .order_by("group__name")
    ):
        if budget.group_id:
            label = f"Team “{budget.group.name}”"  # type: ignore[union-attr]
            amount = spent(since=since, group_id=budget.group_id)
        else:
            label, amount = "You", spent(since=since, user=user)
        lines.append(BudgetLine(budget, label, amount))
    return lines


def least_left(lines: Sequence[BudgetLine]) -> BudgetLine | None:
    """The budget that runs out first: what a form compares its estimate with."""
    return min(lines, key=lambda line: line.left, default=None)


@dataclass(frozen=True)
class Usage:
    month: datetime
    per_user: Sequence[Mapping[str, Any]]
    per_team: Sequence[Mapping[str, Any]]
    per_month: Sequence[Mapping[str, Any]]
    total: Decimal


def usage(*, viewer: Any, month: datetime) -> Usage:
    """Charges per user and per team for one month, and per month for the last year.

    Read from the ledger, so a deleted video still counts. A job counts when it was charged
    something: failed ones (and those cancelled before they ran) are in the ledger at $0 and
    are left out of the job counts, as before. Staff see everybody; others see their own
    spend and their own teams'.
    """
    start, end = month, next_month(month)
    counted = Charge.objects.exclude(basis=Charge.Basis.NONE)
    in_month = counted.filter(at__gte=start, at__lt=end)
    teams = Group.objects.order_by("name")
    if not viewer.is_staff:
        in_month = in_month.filter(owner=viewer)
        counted = counted.filter(owner=viewer)
        # A subquery, not a join on `user`: the annotation below must see every member.
        teams = teams.filter(pk__in=viewer.groups.values("pk"))
    per_user = list(
        in_month.values("owner__username")
        .annotate(total=Sum("amount"), jobs=Count("pk"))
        .order_by("-total", "owner__username")
    )
    team_filter = Q(user__charges__at__gte=start, user__charges__at__lt=end)
    team_filter &= ~Q(user__charges__basis=Charge.Basis.NONE)
    per_team = list(
        teams.annotate(
            total=Sum("user__charges__amount", filter=team_filter),
            jobs=Count("user__charges", filter=team_filter),
            members=Count("user", distinct=True),
        ).values("pk", "name", "total", "jobs", "members")
    )
    year_ago = next_month(month).replace(year=next_month(month).year - 1)
    per_month = list(
        counted.filter(at__gte=year_ago, at__lt=end)
        .annotate(month=TruncMonth("at"))
        .values("month")
        .annotate(total=Sum("amount"), jobs=Count("pk"))
        .order_by("-month")
    )
    total = in_month.aggregate(total=Sum("amount"))["total"] or Decimal("0")
    return Usage(month, per_user, per_team, per_month, total)


def all_budget_lines() -> list[BudgetLine]:
    """Every budget with this month's spend, for staff on the usage page."""
    since = month_start()
    lines = []
    for budget in Budget.objects.select_related("user", "group").order_by(
        "group__name", "user__username"
    ):
        if budget.group_id:
            label = f"Team “{budget.group.name}”"  # type: ignore[union-attr]
            amount = spent(since=since, group_id=budget.group_id)
        else:
            label = budget.user.get_username()  # type: ignore[union-attr]
            amount = spent(since=since, user=budget.user)
        lines.append(BudgetLine(budget, label, amount))
    return lines
