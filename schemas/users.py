"""User bodies: the account, its profile, preferences, statistics and admin updates."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Annotated, Literal

import msgspec

from schemas.base import END, ApiBody, ApiResponse, Line, Paragraphs, VisibleLine
from schemas.checks import Check, iana_zone, iana_zones, not_in_future
from schemas.emails import normalize_email


class Role(enum.StrEnum):
    """An account's role; admin ranks above teacher, teacher above student."""

    STUDENT = "student"
    TEACHER = "teacher"
    ADMIN = "admin"


Language = Literal["en", "tr", "es", "fr"]
Email = Annotated[
    str,
    msgspec.Meta(
        min_length=3,
        max_length=254,
        description=(
            "An email address with an ASCII local part, NFKC-normalised; stored with its"
            " domain in ASCII (IDNA) and compared case-insensitively"
        ),
        extra_json_schema={"extra": {"format": "email"}},
    ),
    Check(normalize_email),
]
PersonName = Annotated[VisibleLine, msgspec.Meta(min_length=2, max_length=50)]
Phone = Annotated[str, msgspec.Meta(pattern=r"^\+?[1-9][0-9]{0,15}" + END)]
ShortText = Annotated[Line, msgspec.Meta(max_length=100)]
Url = Annotated[
    str,
    msgspec.Meta(max_length=2048, pattern=r"^https?://(?![\s\S]*[\s\x00-\x1f\x7f-\x9f])\S"),
]
Bio = Annotated[Paragraphs, msgspec.Meta(max_length=500)]
Timezone = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=64,
        description="An IANA time zone name, such as Europe/Istanbul",
        # `null` too, for an optional zone: Litestar puts the enum beside `oneOf`.
        extra_json_schema={"extra": {"enum": [*sorted(iana_zones()), None]}},
    ),
    Check(iana_zone),
]
BirthDate = Annotated[dt.date, msgspec.Meta(description="Not in the future"), Check(not_in_future)]


class Location(ApiBody):
    country: ShortText | None = None
    city: ShortText | None = None
    timezone: Timezone | None = None


class Profile(ApiBody):
    bio: Bio | None = None
    phone: Phone | None = None
    avatar: Url | None = None
    date_of_birth: BirthDate | None = None
    location: Location | None = None


class Notifications(ApiBody):
    email: bool = True
    push: bool = True
    sms: bool = False


class Privacy(ApiBody):
    profile_visible: bool = True
    show_progress: bool = True
    allow_messages: bool = True


class Preferences(ApiBody):
    language: Language = "en"
    timezone: Timezone = "UTC"
    notifications: Notifications = msgspec.field(default_factory=Notifications)
    privacy: Privacy = msgspec.field(default_factory=Privacy)


class User(ApiResponse):
    id: str
    email: str
    first_name: str
    last_name: str
    role: Role
    is_active: bool
    is_email_verified: bool
    profile: Profile
    preferences: Preferences
    created_at: dt.datetime
    updated_at: dt.datetime
    last_login_at: dt.datetime | None = None
    password_changed_at: dt.datetime | None = None


class ProfileUpdate(ApiBody):
    first_name: PersonName | msgspec.UnsetType = msgspec.UNSET
    last_name: PersonName | msgspec.UnsetType = msgspec.UNSET
    profile: Profile | msgspec.UnsetType = msgspec.UNSET


class AdminUserUpdate(ApiBody):
    first_name: PersonName | msgspec.UnsetType = msgspec.UNSET
    last_name: PersonName | msgspec.UnsetType = msgspec.UNSET
    role: Role | msgspec.UnsetType = msgspec.UNSET
    is_active: bool | msgspec.UnsetType = msgspec.UNSET


class UserPage(ApiResponse):
    items: list[User]
    page: int
    limit: int
    total: int


class Statistics(ApiResponse):
    member_since: dt.datetime
    last_login_at: dt.datetime | None
    active_sessions: int
    achievements: int
    courses_enrolled: int
    courses_completed: int
    average_progress: float


class ProgressList(ApiResponse):
    items: list[CourseProgress]


class AchievementList(ApiResponse):
    items: list[Achievement]


class CourseProgress(ApiResponse):
    course_id: str
    progress: float
    status: str
    enrolled_at: dt.datetime


class Achievement(ApiResponse):
    id: str
    title: str
    description: str | None
    badge: str | None
    earned_at: dt.datetime
