"""`/api/analytics`: the overview for teachers and admins, and the enrollments export."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec
from litestar.params import QueryParameter

from schemas.analytics import AnalyticsOverview
from server.db.unit import UnitOfWork
from server.http.csv_stream import CSV_MEDIA_TYPE, CsvStream
from server.security.permissions import Permission
from server.services.analytics import DEFAULT_DAYS, MAX_DAYS, Analytics
from server.services.exports import Exports
from server.services.viewer import Viewer

_READ = {"permission": Permission.ANALYTICS_READ}
_EXPORT = {"permission": Permission.ANALYTICS_EXPORT}


class AnalyticsController(Controller):
    path = "/api/analytics"
    tags = ["analytics"]

    @get("/overview", opt=_READ)
    async def overview(
        self,
        analytics: NamedDependency[Analytics],
        reads: NamedDependency[UnitOfWork],
        viewer: NamedDependency[Viewer],
        days: Annotated[int, QueryParameter(ge=1, le=MAX_DAYS)] = DEFAULT_DAYS,
    ) -> AnalyticsOverview:
        """Totals, daily trends and top courses: an admin's of everything, a teacher's of their
        courses.

        Users by role and active within 7 and 30 days (signed in or seen on a session),
        courses, enrollments, completions, average progress and average graded score; the
        enrollments and completions of each of the last `days` UTC days (default 30, at
        most 365); the ten courses with the most enrollments.
        """
        return await analytics.overview(reads, viewer, days=days)

    @get(
        "/export",
        opt=_EXPORT,
        media_type=CSV_MEDIA_TYPE,
        responses={
            200: ResponseSpec(
                str,
                description="CSV attachment, one line per enrollment, streamed",
                media_type=CSV_MEDIA_TYPE,
                generate_examples=False,
            )
        },
    )
    async def export(
        self,
        exports: NamedDependency[Exports],
        viewer: NamedDependency[Viewer],
        course_id: Annotated[uuid.UUID | None, QueryParameter(name="courseId")] = None,
        since: Annotated[dt.datetime | None, QueryParameter()] = None,
    ) -> CsvStream:
        """Enrollments as a CSV attachment, streamed in constant memory.

        One line per enrollment, oldest first: user, course, status, progress, when enrolled
        and completed, and the number and average score of its submissions. `courseId`
        keeps one course, `since` (ISO 8601; UTC when no offset is given) the enrollments
        made from then on. Cells a spreadsheet would read as formulas start with `'`.
        """
        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=dt.UTC)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        return CsvStream(
            exports.enrollments_csv(
                viewer, course_id=str(course_id) if course_id else None, since=since
            ),
            filename=f"enrollments-{stamp}.csv",
        )
