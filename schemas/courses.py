"""Course bodies: courses, lessons, enrollments, reviews and their pages (API.md "Courses")."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

import msgspec

from schemas.base import ApiBody, ApiResponse

Level = Literal["beginner", "intermediate", "advanced"]
CourseStatus = Literal["draft", "published", "archived"]
EnrollmentStatus = Literal["active", "completed", "dropped"]
PaymentMethod = Literal["credit_card", "paypal", "bank_transfer"]
CourseSort = Literal["relevance", "rating", "popular", "newest", "price"]

Title = Annotated[str, msgspec.Meta(min_length=3, max_length=200)]
Description = Annotated[str, msgspec.Meta(min_length=10, max_length=2000)]
Category = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
Price = Annotated[float, msgspec.Meta(ge=0, le=1_000_000, description="At most 2 decimal places")]
Minutes = Annotated[int, msgspec.Meta(ge=1, le=100_000)]
Tag = Annotated[str, msgspec.Meta(min_length=2, max_length=30)]
Tags = Annotated[list[Tag], msgspec.Meta(max_length=10)]
Prerequisite = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Objective = Annotated[str, msgspec.Meta(min_length=5, max_length=200)]
Objectives = Annotated[list[Objective], msgspec.Meta(min_length=1, max_length=50)]
LessonContent = Annotated[str, msgspec.Meta(max_length=100_000)]
Position = Annotated[int, msgspec.Meta(ge=1, le=10_000)]
Rating = Annotated[int, msgspec.Meta(ge=1, le=5)]
Comment = Annotated[str, msgspec.Meta(max_length=2000)]
CouponCode = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9]{4,20}$")]


class CourseCreate(ApiBody):
    title: Title
    description: Description
    category: Category
    level: Level
    duration: Minutes
    learning_objectives: Objectives
    price: Price = 0.0
    tags: Tags = msgspec.field(default_factory=list)
    prerequisites: Annotated[list[Prerequisite], msgspec.Meta(max_length=50)] = msgspec.field(
        default_factory=list
    )


class CourseUpdate(ApiBody):
    title: Title | msgspec.UnsetType = msgspec.UNSET
    description: Description | msgspec.UnsetType = msgspec.UNSET
    category: Category | msgspec.UnsetType = msgspec.UNSET
    level: Level | msgspec.UnsetType = msgspec.UNSET
    duration: Minutes | msgspec.UnsetType = msgspec.UNSET
    learning_objectives: Objectives | msgspec.UnsetType = msgspec.UNSET
    price: Price | msgspec.UnsetType = msgspec.UNSET
    tags: Tags | msgspec.UnsetType = msgspec.UNSET
    prerequisites: (
        Annotated[list[Prerequisite], msgspec.Meta(max_length=50)] | msgspec.UnsetType
    ) = msgspec.UNSET


class Instructor(ApiResponse):
    id: str
    name: str


class Course(ApiResponse):
    id: str
    slug: str
    title: str
    description: str
    category: str
    level: Level
    price: float
    duration: int
    tags: list[str]
    prerequisites: list[str]
    learning_objectives: list[str]
    instructor: Instructor
    status: CourseStatus
    published_at: dt.datetime | None
    average_rating: float
    review_count: int
    total_enrollments: int
    lesson_count: int
    created_at: dt.datetime
    updated_at: dt.datetime


class CoursePage(ApiResponse):
    items: list[Course]
    page: int
    limit: int
    total: int


class LessonCreate(ApiBody):
    title: Title
    content: LessonContent
    duration_minutes: Minutes
    position: Position | None = None
    required: bool = True


class LessonUpdate(ApiBody):
    title: Title | msgspec.UnsetType = msgspec.UNSET
    content: LessonContent | msgspec.UnsetType = msgspec.UNSET
    duration_minutes: Minutes | msgspec.UnsetType = msgspec.UNSET
    position: Position | msgspec.UnsetType = msgspec.UNSET
    required: bool | msgspec.UnsetType = msgspec.UNSET


class Lesson(ApiResponse):
    """A lesson as the enrolled and the staff see it; `content` is left out of the syllabus."""

    id: str
    course_id: str
    title: str
    duration_minutes: int
    position: int
    required: bool
    content: str | None = None
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None


class LessonList(ApiResponse):
    items: list[Lesson]
    full: bool
    """False when the caller sees the syllabus only (titles and durations)."""


class EnrollRequest(ApiBody):
    payment_method: PaymentMethod | None = None
    coupon_code: CouponCode | None = None


class Enrollment(ApiResponse):
    id: str
    course_id: str
    user_id: str
    status: EnrollmentStatus
    progress: float
    enrolled_at: dt.datetime
    last_activity_at: dt.datetime
    completed_at: dt.datetime | None = None
    dropped_at: dt.datetime | None = None
    completed_lessons: int = 0


class CourseStudent(ApiResponse):
    user_id: str
    name: str
    email: str
    status: EnrollmentStatus
    progress: float
    enrolled_at: dt.datetime
    last_activity_at: dt.datetime
    completed_at: dt.datetime | None = None


class CourseStudentPage(ApiResponse):
    items: list[CourseStudent]
    page: int
    limit: int
    total: int


class ReviewCreate(ApiBody):
    rating: Rating
    comment: Comment | None = None


class ReviewUpdate(ApiBody):
    rating: Rating | msgspec.UnsetType = msgspec.UNSET
    comment: Comment | msgspec.UnsetType | None = msgspec.UNSET


class Review(ApiResponse):
    id: str
    course_id: str
    user_id: str
    author: str
    rating: int
    comment: str | None
    created_at: dt.datetime
    updated_at: dt.datetime


class ReviewPage(ApiResponse):
    items: list[Review]
    page: int
    limit: int
    total: int


class DailyCount(ApiResponse):
    date: dt.date
    count: int


class CourseAnalytics(ApiResponse):
    total_students: int
    active_students: int
    average_progress: float
    completion_rate: float
    average_rating: float
    average_score: float | None
    enrollments_by_day: list[DailyCount]
