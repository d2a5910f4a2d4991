"""The analytics overview: an admin's of everything, a teacher's of the courses they teach."""

from __future__ import annotations

import msgspec

from schemas.analytics import AnalyticsOverview, DailyTrend, OverviewTotals, TopCourse
from server.db.queries import analytics as q
from server.db.unit import UnitOfWork
from server.services.viewer import Viewer

DEFAULT_DAYS = 30
MAX_DAYS = 365
TOP_COURSES = 10


class _Overview(msgspec.Struct):
    days: int
    totals: OverviewTotals
    trends: list[DailyTrend]
    top_courses: list[TopCourse]


class Analytics:
    async def overview(
        self, uow: UnitOfWork, viewer: Viewer, *, days: int = DEFAULT_DAYS
    ) -> AnalyticsOverview:
        """Totals, the daily trend over the last `days` UTC days (today included), top courses."""
        row = await uow.one(
            q.OVERVIEW,
            {"admin": viewer.is_admin, "viewer": viewer.user_id, "days": days, "top": TOP_COURSES},
            _Overview,
        )
        assert row is not None
        return AnalyticsOverview(
            scope="all" if viewer.is_admin else "own",
            days=row.days,
            totals=row.totals,
            trends=row.trends,
            top_courses=row.top_courses,
        )
