"""The schools the benchmark runs on: a district of teachers who each teach the same number of generated classes."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sandbox.directory import DOMAIN, User, stable_id
from sandbox.school import School
from sandbox.seed import generate_school


@dataclass(frozen=True, slots=True)
class SchoolShape:
    """How big a benchmark school is: `teachers` × `classes_per_teacher` × `assignments` × `students`."""

    teachers: int
    classes_per_teacher: int
    assignments: int
    students: int
    seed: int = 0

    def __post_init__(self) -> None:
        if min(self.teachers, self.classes_per_teacher, self.assignments) < 1 or self.students < 3:
            raise ValueError("a benchmark school needs ≥1 teacher, class and assignment, and ≥3 students per class")

    @property
    def classes(self) -> int:
        return self.teachers * self.classes_per_teacher

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SchoolShape:
        return cls(**{key: int(value) for key, value in data.items()})

    def describe(self) -> str:
        return f"{self.teachers} × {self.classes_per_teacher} × {self.assignments} × {self.students}"


def district_school(shape: SchoolShape) -> School:
    """`generate_school` (one teacher per two classes), then class n is given to teacher n // classes_per_teacher.

    Teachers the generator did not make (one class each) are added like it makes them; its extra teachers stay in
    the directory teaching nothing. Ids are stable for the same shape.
    """
    school = generate_school(
        classes=shape.classes,
        assignments_per_class=shape.assignments,
        students_per_class=shape.students,
        seed=shape.seed,
    )
    directory = school.directory
    teachers = sorted(
        (user for user in directory.users.values() if user.role == "teacher"),
        key=lambda user: user.teacher_number or "",
    )
    for number in range(len(teachers), shape.teachers):
        upn = f"teacher{number + 1}@{DOMAIN}"
        teacher = User(stable_id("user", upn), upn, f"Teacher {number + 1}", "Teacher", str(number + 1), "teacher")
        teacher.teacher_number = f"T{number + 1:04d}"
        directory.users[teacher.id] = teacher
        teachers.append(teacher)
    classes = sorted(directory.classes.values(), key=lambda school_class: school_class.class_code)
    for number, school_class in enumerate(classes):
        school_class.teacher_ids = [teachers[number // shape.classes_per_teacher].id]
    return school
