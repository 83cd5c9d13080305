"""Shared reads: the jobs table and the tracker's view of due work."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q, QuerySet

from jobs.models import Video

SORTS = {
    "newest": ("-requested_at", "-id"),
    "oldest": ("requested_at", "id"),
    "status": ("status", "-requested_at", "-id"),
    "model": ("model", "-requested_at", "-id"),
}


@dataclass(frozen=True)
class TableFilters:
    status: str = ""
    model: str = ""
    mine: bool = False
    q: str = ""
    sort: str = "newest"
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_query(cls, params: dict[str, str]) -> TableFilters:
        status = params.get("status", "")
        if status not in {*Video.Status.values, "waiting", ""}:
            status = ""
        sort = params.get("sort", "newest")
        return cls(
            status=status,
            model=params.get("model", "")[:100],
            mine=params.get("mine") == "1",
            q=params.get("q", "")[:200].strip(),
            sort=sort if sort in SORTS else "newest",
        )


def videos_for_table(*, user: AbstractBaseUser, filters: TableFilters) -> QuerySet[Video]:
    """Everything the table shows in one query (plus the paginator's count)."""
    qs = Video.objects.select_related("owner", "source", "provider")
    if filters.mine:
        qs = qs.filter(owner=user)
    if filters.status == "waiting":
        qs = qs.filter(submission__in=[Video.Submission.PENDING, Video.Submission.UNKNOWN])
    elif filters.status:
        qs = qs.filter(status=filters.status)
    if filters.model:
        qs = qs.filter(model=filters.model)
    if filters.q:
        qs = qs.filter(prompt__icontains=filters.q)
    return qs.order_by(*SORTS[filters.sort])


def active_filter() -> Q:
    return Q(status__in=Video.ACTIVE) & ~Q(submission=Video.Submission.REJECTED)


def models_in_use() -> list[str]:
    return list(Video.objects.order_by().values_list("model", flat=True).distinct())
