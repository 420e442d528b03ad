"""The sandbox tenant's people, classes and app registrations: who exists, who teaches and who studies where.

Identity, Graph and the Bot Connector stand-in all read this one directory; assignments live in `school.py`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Literal

Role = Literal["teacher", "student"]

# Deterministic ids: uuid5 under one namespace, so a seed always yields the same tenant.
NAMESPACE = uuid.UUID("5f0c4b3e-7a51-4a61-9a38-2d8c1b7e9f10")
TENANT_ID = str(uuid.uuid5(NAMESPACE, "tenant:contoso-high"))
DOMAIN = "contoso-high.example"

# The bot's app registration in the sandbox tenant (sandbox mode uses it for msal on-behalf-of).
BOT_APP_ID = str(uuid.uuid5(NAMESPACE, "app:gradebot"))
BOT_APP_SECRET = "sandbox-gradebot-secret"  # a published development credential, never a real one
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
GRAPH_AUDIENCE = "https://graph.microsoft.com"


def stable_id(kind: str, name: str) -> str:
    """A GUID that is the same on every machine for the same (kind, name)."""
    return str(uuid.uuid5(NAMESPACE, f"{kind}:{name}"))


@dataclass(slots=True)
class User:
    id: str
    user_principal_name: str
    display_name: str
    given_name: str
    surname: str
    role: Role
    student_number: str | None = None
    teacher_number: str | None = None

    @property
    def mail(self) -> str:
        return self.user_principal_name


@dataclass(slots=True)
class SchoolClass:
    id: str
    display_name: str
    mail_nickname: str
    class_code: str
    description: str
    school_id: str
    term_name: str = "2026-2027"
    teacher_ids: list[str] = field(default_factory=list)
    student_ids: list[str] = field(default_factory=list)

    @property
    def member_ids(self) -> list[str]:
        return [*self.teacher_ids, *self.student_ids]

    @property
    def team_id(self) -> str:
        """The class team's id in Teams, which is also its General channel's conversation id."""
        return f"19:{self.id}@thread.tacv2"


@dataclass(slots=True)
class EducationSchool:
    id: str
    display_name: str


@dataclass(slots=True)
class AppRegistration:
    app_id: str
    display_name: str
    secret: str
    roles: frozenset[str]
    """Application permissions granted (with admin consent) in this tenant."""
    delegated_scopes: frozenset[str]
    """Delegated Graph permissions users have consented to for this app."""


@dataclass(slots=True)
class Directory:
    tenant_id: str
    users: dict[str, User] = field(default_factory=dict)
    classes: dict[str, SchoolClass] = field(default_factory=dict)
    schools: dict[str, EducationSchool] = field(default_factory=dict)
    apps: dict[str, AppRegistration] = field(default_factory=dict)

    def user_by_upn(self, upn: str) -> User | None:
        wanted = upn.lower()
        return next((u for u in self.users.values() if u.user_principal_name.lower() == wanted), None)

    def classes_of(self, user_id: str) -> list[SchoolClass]:
        return [c for c in self.classes.values() if user_id in c.teacher_ids or user_id in c.student_ids]

    def taught_by(self, user_id: str) -> list[SchoolClass]:
        return [c for c in self.classes.values() if user_id in c.teacher_ids]

    def class_by_team(self, team_id: str) -> SchoolClass | None:
        return next((c for c in self.classes.values() if c.team_id == team_id), None)


FIRST_NAMES = (
    "Amara",
    "Ben",
    "Chloe",
    "Dmitri",
    "Elena",
    "Farah",
    "Gabriel",
    "Hana",
    "Isaac",
    "Jade",
    "Kofi",
    "Lena",
    "Mateo",
    "Nia",
    "Oscar",
    "Priya",
    "Quinn",
    "Rafael",
    "Sofia",
    "Tariq",
    "Uma",
    "Victor",
    "Wen",
    "Ximena",
    "Yusuf",
    "Zoe",
    "Aiden",
    "Bea",
    "Cyrus",
    "Dalia",
)
LAST_NAMES = (
    "Abara",
    "Bergstrom",
    "Castillo",
    "Dubois",
    "Eriksen",
    "Fonseca",
    "Gupta",
    "Haddad",
    "Ivanova",
    "Jensen",
    "Kowalski",
    "Lindqvist",
    "Moreau",
    "Nakamura",
    "Okafor",
    "Petrov",
    "Quispe",
    "Rossi",
    "Sato",
    "Tanaka",
    "Umarov",
    "Varga",
    "Weber",
    "Xu",
    "Yilmaz",
    "Zhang",
    "Achebe",
    "Brennan",
    "Costa",
    "Devi",
)


def make_user(role: Role, given: str, surname: str, index: int) -> User:
    upn = f"{given}.{surname}".lower().replace(" ", "") + f"@{DOMAIN}"
    return User(
        id=stable_id("user", upn),
        user_principal_name=upn,
        display_name=f"{given} {surname}",
        given_name=given,
        surname=surname,
        role=role,
        student_number=f"S{index:05d}" if role == "student" else None,
        teacher_number=f"T{index:04d}" if role == "teacher" else None,
    )


def student_name(index: int) -> tuple[str, str]:
    """The index-th student's (given name, surname); unique for the first 900 students."""
    return FIRST_NAMES[index % len(FIRST_NAMES)], LAST_NAMES[(7 * index + index // len(FIRST_NAMES)) % len(LAST_NAMES)]


def default_apps() -> dict[str, AppRegistration]:
    gradebot = AppRegistration(
        app_id=BOT_APP_ID,
        display_name="Gradebot (sandbox)",
        secret=BOT_APP_SECRET,
        roles=frozenset({"EduRoster.Read.All", "EduAssignments.ReadWrite.All"}),
        delegated_scopes=frozenset({"EduRoster.ReadBasic", "EduAssignments.ReadWrite", "User.Read"}),
    )
    return {gradebot.app_id: gradebot}


def default_directory() -> Directory:
    """Contoso High: two teachers, three classes of 25 students (Chemistry is co-taught)."""
    directory = Directory(tenant_id=TENANT_ID, apps=default_apps())
    school = EducationSchool(stable_id("school", "contoso-high"), "Contoso High School")
    directory.schools[school.id] = school
    rosa = make_user("teacher", "Rosa", "Martinez", 1)
    david = make_user("teacher", "David", "Okafor", 2)
    for teacher in (rosa, david):
        directory.users[teacher.id] = teacher
    students = [make_user("student", *student_name(i), i + 1) for i in range(60)]
    for student in students:
        directory.users[student.id] = student
    plans = (
        ("Biology 101", "BIO101", [rosa.id], students[0:25]),
        ("Chemistry 201", "CHEM201", [rosa.id, david.id], students[20:45]),
        ("World History 9", "HIST9", [david.id], students[35:60]),
    )
    for name, code, teachers, members in plans:
        school_class = SchoolClass(
            id=stable_id("class", code),
            display_name=name,
            mail_nickname=code.lower(),
            class_code=code,
            description=f"{name} at Contoso High School",
            school_id=school.id,
            teacher_ids=list(teachers),
            student_ids=[s.id for s in members],
        )
        directory.classes[school_class.id] = school_class
    return directory
