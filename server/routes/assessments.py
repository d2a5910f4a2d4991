"""Assessments: authoring, attempts, submissions, grading and the course gradebook."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, post, put
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.status_codes import HTTP_204_NO_CONTENT

from schemas.assessments import (
    Assessment,
    AssessmentCreate,
    AssessmentList,
    AssessmentUpdate,
    AttemptStarted,
    Gradebook,
    GradedSubmission,
    GradeRequest,
    Submission,
    SubmissionCreate,
    SubmissionPage,
)
from schemas.base import MAX_PAGE_SIZE
from server.db.unit import UnitOfWork
from server.http.csv_stream import CSV_MEDIA_TYPE, CsvStream
from server.http.idempotency import Idempotency
from server.security.permissions import Permission, Role
from server.services.assessments import Assessments
from server.services.exports import Exports
from server.services.gradebook import Gradebooks
from server.services.grades import Grades
from server.services.submissions import Submissions
from server.services.viewer import Viewer

_READ = {"permission": Permission.ASSESSMENT_READ}
_CREATE = {"permission": Permission.ASSESSMENT_CREATE}
_UPDATE = {"permission": Permission.ASSESSMENT_UPDATE}
_DELETE = {"permission": Permission.ASSESSMENT_DELETE}
_GRADE = {"permission": Permission.ASSESSMENT_GRADE}
_STUDENT = {"roles": (Role.STUDENT,)}
Page = Annotated[int, QueryParameter(ge=1, le=100_000)]
Limit = Annotated[int, QueryParameter(ge=1)]


class CourseAssessmentsController(Controller):
    path = "/api/courses/{course_id:uuid}"
    tags = ["assessments"]

    @get("/assessments", opt=_READ)
    async def list_assessments(
        self,
        assessments: NamedDependency[Assessments],
        uow: NamedDependency[UnitOfWork],
        viewer: NamedDependency[Viewer],
        course_id: FromPath[uuid.UUID],
    ) -> AssessmentList:
        """A course's assessments: all with keys for its staff, published ones without for
        its enrolled students."""
        return await assessments.list_for(uow, viewer, str(course_id))

    @post("/assessments", opt=_CREATE, status_code=201)
    async def create_assessment(
        self,
        assessments: NamedDependency[Assessments],
        uow: NamedDependency[UnitOfWork],
        viewer: NamedDependency[Viewer],
        idempotency: NamedDependency[Idempotency],
        course_id: FromPath[uuid.UUID],
        data: JSONBody[AssessmentCreate],
    ) -> Response[Assessment]:
        """Create an assessment of the course (its instructor or an admin)."""
        created = await assessments.create(uow, viewer, str(course_id), data)
        return await idempotency.keep(created)

    @get(
        "/gradebook",
        opt=_GRADE,
        responses={
            200: ResponseSpec(
                Gradebook,
                description="The gradebook page; with `Accept: text/csv`, every student as a"
                " CSV attachment, streamed",
            )
        },
    )
    async def gradebook(
        self,
        request: Request[Any, Any, Any],
        gradebooks: NamedDependency[Gradebooks],
        exports: NamedDependency[Exports],
        reads: NamedDependency[UnitOfWork],
        viewer: NamedDependency[Viewer],
        course_id: FromPath[uuid.UUID],
        page: Page = 1,
        limit: Limit = 20,
    ) -> Response[Any]:
        """Per student, each published assessment's effective score and the course grade;
        paginated JSON, or every student as streamed CSV with `Accept: text/csv`."""
        course = str(course_id)
        if CSV_MEDIA_TYPE in request.headers.get("accept", ""):
            await gradebooks.authorize(reads, viewer, course)
            rows = exports.gradebook_csv(viewer, course)
            return CsvStream(rows, filename=f"gradebook-{course}.csv")
        book = await gradebooks.page(
            reads, viewer, course, page=page, limit=min(limit, MAX_PAGE_SIZE)
        )
        return Response(book)


class AssessmentsController(Controller):
    path = "/api/assessments/{assessment_id:uuid}"
    tags = ["assessments"]

    @get("/", opt=_READ)
    async def get_assessment(
        self,
        assessments: NamedDependency[Assessments],
        uow: NamedDependency[UnitOfWork],
        viewer: NamedDependency[Viewer],
        assessment_id: FromPath[uuid.UUID],
    ) -> Assessment:
        """One assessment; students never see its answer keys."""
        return await assessments.get(uow, viewer, str(assessment_id))

    @put("/", opt=_UPDATE)
    async def update_assessment(
        self,
        assessments: NamedDependency[Assessments],
        uow: NamedDependency[UnitOfWork],
        viewer: NamedDependency[Viewer],
        assessment_id: FromPath[uuid.UUID],
        data: JSONBody[AssessmentUpdate],
    ) -> Assessment:
        """Change an assessment; its questions only while nobody has submitted (else 409)."""
        return await assessments.update(uow, viewer, str(assessment_id), data)

    @delete("/", opt=_DELETE, status_code=HTTP_204_NO_CONTENT)
    async def delete_assessment(
        self,
        assessments: NamedDependency[Assessments],
        uow: NamedDependency[UnitOfWork],
        viewer: NamedDependency[Viewer],
        assessment_id: FromPath[uuid.UUID],
    ) -> None:
        """Delete an assessment nobody has submitted (else 409)."""
        await assessments.delete(uow, viewer, str(assessment_id))

    @post(
        "/attempts",
        opt=_STUDENT,
        status_code=201,
        responses={200: ResponseSpec(AttemptStarted, description="The attempt still running")},
    )
    async def start_attempt(
        self,
        submissions: NamedDependency[Submissions],
        uow: NamedDependency[UnitOfWork],
        viewer: NamedDependency[Viewer],
        assessment_id: FromPath[uuid.UUID],
    ) -> Response[AttemptStarted]:
        """Start an attempt (and the clock of a timed assessment); 200 with the attempt still
        running, 409 when no attempt is left."""
        attempt, created = await submissions.start_attempt(uow, viewer, str(assessment_id))
        return Response(attempt, status_code=201 if created else 200)

    @post("/submissions", opt=_STUDENT, status_code=201)
    async def submit(
        self,
        submissions: NamedDependency[Submissions],
        uow: NamedDependency[UnitOfWork],
        viewer: NamedDependency[Viewer],
        idempotency: NamedDependency[Idempotency],
        assessment_id: FromPath[uuid.UUID],
        data: JSONBody[SubmissionCreate],
    ) -> Response[Submission]:
        """Submit answers; objective questions are graded at once, essays wait for a teacher."""
        submitted = await submissions.submit(uow, viewer, str(assessment_id), data)
        return await idempotency.keep(submitted)

    @get("/submissions", opt=_READ)
    async def list_submissions(
        self,
        submissions: NamedDependency[Submissions],
        uow: NamedDependency[UnitOfWork],
        viewer: NamedDependency[Viewer],
        assessment_id: FromPath[uuid.UUID],
        page: Page = 1,
        limit: Limit = 20,
    ) -> SubmissionPage:
        """All submissions for the course's staff; a student's own for a student."""
        return await submissions.list_for(
            uow, viewer, str(assessment_id), page=page, limit=min(limit, MAX_PAGE_SIZE)
        )


class SubmissionsController(Controller):
    path = "/api/submissions/{submission_id:uuid}"
    tags = ["assessments"]

    @post("/grade", opt=_GRADE, status_code=200)
    async def grade(
        self,
        grades: NamedDependency[Grades],
        uow: NamedDependency[UnitOfWork],
        viewer: NamedDependency[Viewer],
        submission_id: FromPath[uuid.UUID],
        data: JSONBody[GradeRequest],
    ) -> GradedSubmission:
        """Grade or regrade a submission; every change is kept in its grade history."""
        return await grades.grade(uow, viewer, str(submission_id), data)
