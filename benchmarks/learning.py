"""The learning domain's side of a run: the seeded catalogue, the benchmark students'
enrollments, the request lists of its closed-loop scenarios and its sessions' values."""

from __future__ import annotations

import asyncio
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from benchmarks.assessments import gradebook_path, seed_gradebook, seed_quiz
from benchmarks.catalogue import insert_enrollments, seed_catalogue
from benchmarks.course_requests import (
    Catalogue,
    Row,
    Student,
    completion_rows,
    enroll_rows,
    plan_enrollments,
    read_rows,
    search_rows,
    session_values,
    write_rows,
)
from benchmarks.opensim.mix import SessionCredentials
from benchmarks.scenarios import (
    CATALOGUE_COURSES,
    COURSES_PER_STUDENT,
    SEARCH_TERMS,
    Profile,
)
from benchmarks.search_terms import search_terms
from benchmarks.seed import SeededSession

ENROLL_RATE_BOUND = 4_000.0  # req/s no enroll route reaches here: sizes the enroll list


@dataclass
class LearningData:
    """Everything of one run that depends on the seeded catalogue."""

    dsn: str
    catalogue: Catalogue
    seed: int = 17
    terms: tuple[str, ...] = ()
    quoted_terms: tuple[str, ...] = ()  # the terms as they go in a URL
    enrolled: dict[str, tuple[str, ...]] = field(default_factory=dict)
    lists: dict[str, Path] = field(default_factory=dict)
    offsets: dict[str, Path] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)
    bodies: dict[str, Path] = field(default_factory=dict)  # list name -> body of every row
    assessments: dict[str, str] = field(default_factory=dict)  # what was seeded, for the record

    @classmethod
    def seed_database(cls, dsn: str, courses: int = CATALOGUE_COURSES) -> LearningData:
        """``seed_demo`` with ``courses`` courses (other sizes its defaults) in ``dsn``."""
        from server.services.demo_data import DemoSizes

        catalogue = asyncio.run(seed_catalogue(dsn, DemoSizes(courses=courses)))
        if not catalogue.published:
            raise RuntimeError("seed_demo published no course")
        data = cls(dsn, catalogue)
        rng = random.Random(data.seed)
        data.terms = tuple(t.text for t in search_terms(catalogue.titles, SEARCH_TERMS, rng))
        data.quoted_terms = tuple(quote(t, safe="") for t in data.terms)
        return data

    def enroll(self, sessions: list[SeededSession]) -> None:
        """Enroll each new session's user in ``COURSES_PER_STUDENT`` published courses."""
        rng = random.Random(f"{self.seed}-{len(self.enrolled)}")
        plan = plan_enrollments(
            [s.user_id for s in sessions], self.catalogue.published, COURSES_PER_STUDENT, rng
        )
        asyncio.run(insert_enrollments(self.dsn, plan))
        self.enrolled.update(plan)

    def student(self, session: SeededSession) -> Student:
        return Student(
            session.user_id, session.access_token, self.enrolled.get(session.user_id, ())
        )

    def write_lists(
        self, tmp: Path, rotation: list[SeededSession], admin_token: str, profile: Profile
    ) -> None:
        """The request list of every learning scenario, and its offset file."""
        rng = random.Random(self.seed)
        students = [self.student(s) for s in rotation]
        tokens = [s.access_token for s in rotation]
        # Enough pairs for the warm-up, twice the measured time and a profile run alike.
        seconds = profile.wrk_warmup_s + 2 * profile.wrk_duration_s
        lists: dict[str, list[Row]] = {
            "course-read": read_rows(self.catalogue.published[0], tokens),
            "search-student": search_rows(self.terms, tokens),
            "search-admin": search_rows(self.terms, [admin_token]),
            "enroll": enroll_rows(
                students, self.catalogue.published, int(seconds * ENROLL_RATE_BOUND), rng
            ),
            "complete": completion_rows(students, self.catalogue.lessons),
        }
        for name, rows in lists.items():
            self.lists[name] = write_rows(tmp / f"rows-{name}.txt", rows)
            self.sizes[name] = len(rows)

    def write_assessment_lists(
        self,
        tmp: Path,
        base_url: str,
        rotation: list[SeededSession],
        admin_token: str,
        wanted: set[str],
    ) -> None:
        """The request lists of the assessment scenarios in ``wanted`` (``submit``,
        ``gradebook``), after seeding what they read."""
        lists: dict[str, list[Row]] = {}
        if "submit" in wanted:
            quiz = seed_quiz(self.dsn, base_url, admin_token, [s.user_id for s in rotation])
            lists["submit"] = [(quiz.path, s.access_token) for s in rotation]
            self.bodies["submit"] = tmp / "body-submit.json"
            self.bodies["submit"].write_text(json.dumps(quiz.body))
            self.assessments.update(quiz_course=quiz.course_id, quiz=quiz.assessment_id)
        if "gradebook" in wanted:
            course = seed_gradebook(self.dsn)
            lists["gradebook"] = [(gradebook_path(course), admin_token)]
            self.assessments["gradebook_course"] = course
        for name, rows in lists.items():
            self.lists[name] = write_rows(tmp / f"rows-{name}.txt", rows)
            self.sizes[name] = len(rows)

    def first_row(self, name: str) -> tuple[str, str]:
        """The first request of list ``name`` (its path and token)."""
        with self.lists[name].open() as f:
            line = f.readline().rstrip("\n")
        path, _, token = line.partition("\t")
        return path, token

    def offset_file(self, scenario: str, start: int = 0) -> Path:
        """The offset file of ``scenario``'s runs, created at ``start`` on first use."""
        path = self.offsets.get(scenario)
        if path is None:
            path = next(iter(self.lists.values())).with_name(f"offset-{scenario}.txt")
            path.write_text(f"{start}\n")
            self.offsets[scenario] = path
        return path

    def rows_used(self, scenario: str) -> int:
        path = self.offsets.get(scenario)
        return int(path.read_text().strip() or 0) if path else 0

    def credentials(self, session: SeededSession) -> SessionCredentials:
        """A student's-day session: tokens, plus the pools and queues of its paths."""
        rng = random.Random(session.user_id)
        pools, queues = session_values(
            self.student(session), self.catalogue, self.quoted_terms, rng
        )
        return SessionCredentials(
            session.access_token, session.refresh_token, session.user_id, pools, queues
        )
