"""Analytics bodies: the teacher's and the admin's overview (API.md "Analytics and system")."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from schemas.base import ApiResponse

OverviewScope = Literal["all", "own"]


class UserTotals(ApiResponse):
    """Users in scope (everyone for an admin; a teacher's enrolled students), by role.

    Active means signed in, or seen on a session, within the last 7 or 30 days.
    """

    total: int
    students: int
    teachers: int
    admins: int
    active_7_days: int
    active_30_days: int


class OverviewTotals(ApiResponse):
    """`averageProgress` and `completionRate` are percents of enrollments; `averageScore` the
    mean graded submission score as a percent of its maximum (null with none graded)."""

    users: UserTotals
    courses: int
    published_courses: int
    enrollments: int
    completions: int
    completion_rate: float
    average_progress: float
    average_score: float | None


class DailyTrend(ApiResponse):
    """One UTC day: enrollments made and completions reached, and their running sums over
    the window."""

    date: dt.date
    enrollments: int
    completions: int
    cumulative_enrollments: int
    cumulative_completions: int


class TopCourse(ApiResponse):
    """A course ranked by enrollments; `share` is its percent of all enrollments in scope."""

    id: str
    title: str
    rank: int
    enrollments: int
    completions: int
    average_progress: float
    share: float


class AnalyticsOverview(ApiResponse):
    scope: OverviewScope
    days: int
    totals: OverviewTotals
    trends: list[DailyTrend]
    top_courses: list[TopCourse]
