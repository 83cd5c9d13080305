"""A paginator whose count stops at COUNT_LIMIT, so no page costs more at 100,000 rows than
at 10,000: COUNT(*) reads every matching row, a bounded count at most COUNT_LIMIT + 1.

The deepest page is then COUNT_LIMIT rows in (OFFSET never passes it either); older rows are
reached by reversing the sort or by narrowing the filters, and the pages say so with "10,000+".
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from django.core.paginator import Paginator
from django.db.models import QuerySet

COUNT_LIMIT = 10_000


class BoundedPaginator(Paginator):
    count_limit = COUNT_LIMIT

    def __init__(self, *args: Any, count_limit: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if count_limit is not None:
            self.count_limit = count_limit

    @cached_property
    def _bounded_count(self) -> tuple[int, bool]:
        rows: Any = self.object_list
        if isinstance(rows, QuerySet):
            # Only the ids, no joins, no ordering, no annotations: SELECT COUNT(*) FROM
            # (SELECT id … LIMIT n), which the planner answers from an index where it can.
            seen = rows.order_by().values("pk")[: self.count_limit + 1].count()
        else:
            seen = len(rows)
        return min(seen, self.count_limit), seen > self.count_limit

    @cached_property
    def count(self) -> int:
        return self._bounded_count[0]

    @property
    def capped(self) -> bool:
        """More rows match than were counted (the count shown is "10,000+")."""
        return self._bounded_count[1]

    @property
    def count_label(self) -> str:
        return f"{self.count:,}+" if self.capped else f"{self.count:,}"

    @property
    def pages_label(self) -> str:
        return f"{self.num_pages:,}+" if self.capped else f"{self.num_pages:,}"
