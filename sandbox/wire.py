"""School objects as Graph's JSON: property names, order, types, nulls, identitySets, timestamps, `@odata.type`s,
`@odata.context` URLs and enum masking (`Prefer: include-unknown-enum-members`), per API version.
"""

from __future__ import annotations

import functools
import json
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import quote

from sandbox.directory import Directory, EducationSchool, SchoolClass, User
from sandbox.school import (
    NOBODY,
    Actor,
    Assignment,
    AssignmentResource,
    Feedback,
    FeedbackOutcome,
    FeedbackResourceOutcome,
    ItemBody,
    Outcome,
    PointsGrade,
    PointsOutcome,
    QualityFeedback,
    QualitySelection,
    Resource,
    ResourceKind,
    Rubric,
    RubricOutcome,
    Submission,
    SubmissionResource,
    SubmissionState,
)

Json = dict[str, Any]

GRAPH_ROOT = "https://graph.microsoft.com"
NS = "#microsoft.graph."
POINTS_OUTCOME_TYPE = f"{NS}educationPointsOutcome"
FEEDBACK_OUTCOME_TYPE = f"{NS}educationFeedbackOutcome"
RUBRIC_OUTCOME_TYPE = f"{NS}educationRubricOutcome"
FEEDBACK_RESOURCE_OUTCOME_TYPE = f"{NS}educationFeedbackResourceOutcome"
POINTS_GRADE_TYPE = f"{NS}educationAssignmentPointsGradeType"
POINTS_GRADE = f"{NS}educationAssignmentPointsGrade"
SUBMISSION_TYPE = f"{NS}educationSubmission"
ASSIGNMENT_TYPE = f"{NS}educationAssignment"
INDIVIDUAL_RECIPIENT = f"{NS}educationSubmissionIndividualRecipient"
CLASS_RECIPIENT = f"{NS}educationAssignmentClassRecipient"
TEAMS_CLASSROOM_APP = "66aeee93-507d-479a-a3ef-8f494af43945"
ASSIGNMENTS_APP = "de8bc8b5-d9f9-48b1-a8ad-b748da725064"

RESOURCE_TYPES: dict[ResourceKind, tuple[str, str]] = {
    "word": (f"{NS}educationWordResource", "fileUrl"),
    "excel": (f"{NS}educationExcelResource", "fileUrl"),
    "powerPoint": (f"{NS}educationPowerPointResource", "fileUrl"),
    "file": (f"{NS}educationFileResource", "fileUrl"),
    "media": (f"{NS}educationMediaResource", "fileUrl"),
    "link": (f"{NS}educationLinkResource", "link"),
    "external": (f"{NS}educationExternalResource", "webUrl"),
}
OUTCOME_TYPES: dict[type[Outcome], str] = {
    PointsOutcome: POINTS_OUTCOME_TYPE,
    FeedbackOutcome: FEEDBACK_OUTCOME_TYPE,
    RubricOutcome: RUBRIC_OUTCOME_TYPE,
    FeedbackResourceOutcome: FEEDBACK_RESOURCE_OUTCOME_TYPE,
}

# Property names per entity type, in the order Graph writes them; `$select` and `$filter` are checked against these.
CLASS_PROPERTIES = (
    "id",
    "description",
    "classCode",
    "createdBy",
    "displayName",
    "externalId",
    "externalName",
    "externalSource",
    "externalSourceDetail",
    "grade",
    "mailNickname",
    "term",
    "course",
)
USER_PROPERTIES = (
    "id",
    "accountEnabled",
    "assignedLicenses",
    "assignedPlans",
    "businessPhones",
    "createdBy",
    "department",
    "displayName",
    "externalSource",
    "externalSourceDetail",
    "givenName",
    "middleName",
    "surname",
    "mail",
    "mailNickname",
    "mailingAddress",
    "mobilePhone",
    "officeLocation",
    "onPremisesInfo",
    "passwordPolicies",
    "passwordProfile",
    "preferredLanguage",
    "primaryRole",
    "provisionedPlans",
    "refreshTokensValidFromDateTime",
    "relatedContacts",
    "residenceAddress",
    "showInAddressList",
    "student",
    "teacher",
    "usageLocation",
    "userPrincipalName",
    "userType",
)
SCHOOL_PROPERTIES = (
    "id",
    "displayName",
    "description",
    "externalSource",
    "externalSourceDetail",
    "principalEmail",
    "principalName",
    "externalPrincipalId",
    "lowestGrade",
    "highestGrade",
    "schoolNumber",
    "externalId",
    "phone",
    "fax",
    "createdBy",
    "address",
)
ASSIGNMENT_PROPERTIES = (
    "classId",
    "displayName",
    "closeDateTime",
    "dueDateTime",
    "assignDateTime",
    "assignedDateTime",
    "allowLateSubmissions",
    "resourcesFolderUrl",
    "feedbackResourcesFolderUrl",
    "createdDateTime",
    "lastModifiedDateTime",
    "allowStudentsToAddResourcesToSubmission",
    "status",
    "notificationChannelUrl",
    "webUrl",
    "addToCalendarAction",
    "addedStudentAction",
    "languageTag",
    "moduleUrl",
    "id",
    "instructions",
    "grading",
    "assignTo",
    "createdBy",
    "lastModifiedBy",
)
SUBMISSION_PROPERTIES = (
    "assignmentId",
    "status",
    "submittedDateTime",
    "unsubmittedDateTime",
    "returnedDateTime",
    "reassignedDateTime",
    "excusedDateTime",
    "lastModifiedDateTime",
    "resourcesFolderUrl",
    "webUrl",
    "id",
    "recipient",
    "submittedBy",
    "unsubmittedBy",
    "returnedBy",
    "reassignedBy",
    "excusedBy",
    "lastModifiedBy",
)
OUTCOME_PROPERTIES = (
    "lastModifiedDateTime",
    "id",
    "lastModifiedBy",
    "points",
    "publishedPoints",
    "feedback",
    "publishedFeedback",
    "rubricQualityFeedback",
    "rubricQualitySelectedLevels",
    "publishedRubricQualityFeedback",
    "publishedRubricQualitySelectedLevels",
    "resourceStatus",
    "feedbackResource",
)
SUBMISSION_RESOURCE_PROPERTIES = ("id", "assignmentResourceUrl", "resource")
ASSIGNMENT_RESOURCE_PROPERTIES = ("id", "distributeForStudentWork", "resource")
RUBRIC_PROPERTIES = (
    "id",
    "displayName",
    "description",
    "grading",
    "levels",
    "qualities",
    "createdDateTime",
    "lastModifiedDateTime",
    "createdBy",
    "lastModifiedBy",
)


def timestamp(moment: datetime | None) -> str | None:
    """Graph's DateTimeOffset: UTC, `Z`, fractional seconds only when non-zero (trailing zeros trimmed)."""
    if moment is None:
        return None
    utc = moment.astimezone(UTC) if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    if utc.microsecond:
        text += "." + f"{utc.microsecond:06d}".rstrip("0")
    return text + "Z"


def _date(day: date | None) -> str | None:
    return day.isoformat() if day is not None else None


def number(value: float) -> int | float:
    """Edm.Single as Graph writes it: whole numbers without a fraction."""
    return int(value) if float(value).is_integer() else value


def identity_set(actor: Actor | None) -> Json | None:
    """identitySet; None → JSON null (never set), NOBODY → Graph's all-null form."""
    if actor is None:
        return None
    if actor.application_id is not None and actor.user_id is None:
        return {"application": {"id": actor.application_id, "displayName": None}, "device": None, "user": None}
    return {"application": None, "device": None, "user": {"id": actor.user_id, "displayName": None}}


def item_body(body: ItemBody | None) -> Json | None:
    return None if body is None else {"content": body.content, "contentType": body.content_type}


def context_url(version: str, fragment: str) -> str:
    """`@odata.context` names Graph (not the sandbox), as Graph writes it."""
    return f"{GRAPH_ROOT}/{version}/$metadata#{fragment}"


def key(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


# -- roster -------------------------------------------------------------------------------------------------------


def _term_dates(term_name: str) -> tuple[date | None, date | None]:
    first, _, last = term_name.partition("-")
    if first.isdigit() and last.isdigit():
        return date(int(first), 8, 24), date(int(last), 6, 18)
    return None, None


def class_json(school_class: SchoolClass) -> Json:
    start, end = _term_dates(school_class.term_name)
    return {
        "id": school_class.id,
        "description": school_class.description,
        "classCode": school_class.class_code,
        "createdBy": identity_set(NOBODY),
        "displayName": school_class.display_name,
        "externalId": None,
        "externalName": school_class.display_name,
        "externalSource": "manual",
        "externalSourceDetail": None,
        "grade": None,
        "mailNickname": school_class.mail_nickname,
        "term": {
            "displayName": school_class.term_name,
            "externalId": None,
            "startDate": _date(start),
            "endDate": _date(end),
        },
        "course": {
            "courseNumber": school_class.class_code,
            "description": school_class.description,
            "displayName": school_class.display_name,
            "externalId": None,
            "subject": None,
        },
    }


def user_json(user: User) -> Json:
    return {
        "id": user.id,
        "accountEnabled": True,
        "assignedLicenses": [],
        "assignedPlans": [],
        "businessPhones": [],
        "createdBy": identity_set(NOBODY),
        "department": None,
        "displayName": user.display_name,
        "externalSource": "manual",
        "externalSourceDetail": None,
        "givenName": user.given_name,
        "middleName": None,
        "surname": user.surname,
        "mail": user.mail,
        "mailNickname": user.user_principal_name.split("@", 1)[0],
        "mailingAddress": None,
        "mobilePhone": None,
        "officeLocation": None,
        "onPremisesInfo": {"immutableId": None},
        "passwordPolicies": None,
        "passwordProfile": None,
        "preferredLanguage": "en-US",
        "primaryRole": user.role,
        "provisionedPlans": [],
        "refreshTokensValidFromDateTime": None,
        "relatedContacts": [],
        "residenceAddress": None,
        "showInAddressList": None,
        "student": (
            {
                "birthDate": None,
                "externalId": None,
                "gender": None,
                "grade": None,
                "graduationYear": None,
                "studentNumber": user.student_number,
            }
            if user.role == "student"
            else None
        ),
        "teacher": ({"externalId": None, "teacherNumber": user.teacher_number} if user.role == "teacher" else None),
        "usageLocation": "US",
        "userPrincipalName": user.user_principal_name,
        "userType": "Member",
    }


def school_json(school: EducationSchool) -> Json:
    return {
        "id": school.id,
        "displayName": school.display_name,
        "description": None,
        "externalSource": "manual",
        "externalSourceDetail": None,
        "principalEmail": None,
        "principalName": None,
        "externalPrincipalId": None,
        "lowestGrade": "9",
        "highestGrade": "12",
        "schoolNumber": None,
        "externalId": None,
        "phone": None,
        "fax": None,
        "createdBy": identity_set(NOBODY),
        "address": None,
    }


def members_of(directory: Directory, school_class: SchoolClass) -> list[User]:
    return [directory.users[user_id] for user_id in school_class.member_ids if user_id in directory.users]


# -- assignments ---------------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=65_536)
def teams_link(view: str, class_id: str, assignment_id: str, submission_id: str | None = None) -> str:
    """A Teams deep link into the Assignments app, built the way Graph builds `webUrl` (remembered: percent-encoding
    it was a third of the time a big page of submissions took to serve)."""
    target: Json = {"id": class_id, "assignmentIds": [assignment_id]}
    if submission_id is not None:
        target["submissionId"] = submission_id
    sub_entity = {
        "version": "1.0",
        "config": {"classes": [target]},
        "action": "navigate",
        "view": view,
        "appId": ASSIGNMENTS_APP,
    }
    context = {"subEntityId": json.dumps(sub_entity, separators=(",", ":")), "channelId": None}
    encoded = quote(json.dumps(context, separators=(",", ":")), safe=",")
    return f"https://teams.microsoft.com/l/entity/{TEAMS_CLASSROOM_APP}/classroom?context={encoded}"


def grading_json(max_points: float | None) -> Json | None:
    return None if max_points is None else {"@odata.type": POINTS_GRADE_TYPE, "maxPoints": number(max_points)}


def assignment_status(status: str, include_unknown: bool) -> str:
    """`inactive` comes after unknownFutureValue in the enum: without the Prefer header it is masked."""
    return "unknownFutureValue" if status == "inactive" and not include_unknown else status


def assignment_json(assignment: Assignment, status: str, include_unknown: bool) -> Json:
    shown_assigned = assignment.assigned_at if status not in ("draft", "scheduled") else None
    return {
        "classId": assignment.class_id,
        "displayName": assignment.display_name,
        "closeDateTime": timestamp(assignment.close_at),
        "dueDateTime": timestamp(assignment.due_at),
        "assignDateTime": timestamp(assignment.assign_at),
        "assignedDateTime": timestamp(shown_assigned),
        "allowLateSubmissions": assignment.allow_late_submissions,
        "resourcesFolderUrl": None,
        "feedbackResourcesFolderUrl": None,
        "createdDateTime": timestamp(assignment.created_at),
        "lastModifiedDateTime": timestamp(assignment.last_modified_at),
        "allowStudentsToAddResourcesToSubmission": assignment.allow_students_to_add_resources,
        "status": assignment_status(status, include_unknown),
        "notificationChannelUrl": None,
        "webUrl": teams_link("assignment-viewer", assignment.class_id, assignment.id),
        "addToCalendarAction": "none",
        "addedStudentAction": "none",
        "languageTag": "en-US",
        "moduleUrl": None,
        "id": assignment.id,
        "instructions": item_body(assignment.instructions),
        "grading": grading_json(assignment.max_points),
        "assignTo": {"@odata.type": CLASS_RECIPIENT},
        "createdBy": identity_set(assignment.created_by),
        "lastModifiedBy": identity_set(assignment.last_modified_by),
    }


def rubric_json(rubric: Rubric) -> Json:
    return {
        "id": rubric.id,
        "displayName": rubric.display_name,
        "description": item_body(ItemBody(rubric.description)),
        "grading": grading_json(rubric.max_points),
        "levels": [
            {
                "levelId": level.level_id,
                "displayName": level.display_name,
                "description": item_body(ItemBody(level.description)),
                "grading": grading_json(level.points),
            }
            for level in rubric.levels
        ],
        "qualities": [
            {
                "qualityId": quality.quality_id,
                "displayName": quality.display_name,
                "description": item_body(ItemBody(quality.description)),
                "weight": None if quality.weight is None else number(quality.weight),
                "criteria": [{"description": item_body(ItemBody(text))} for text in quality.criteria],
            }
            for quality in rubric.qualities
        ],
        "createdDateTime": timestamp(rubric.created_at),
        "lastModifiedDateTime": timestamp(rubric.created_at),
        "createdBy": identity_set(rubric.created_by),
        "lastModifiedBy": identity_set(rubric.created_by),
    }


def resource_json(resource: Resource) -> Json:
    odata_type, url_property = RESOURCE_TYPES[resource.kind]
    return {
        "@odata.type": odata_type,
        "displayName": resource.display_name,
        "createdDateTime": timestamp(resource.created_at),
        "lastModifiedDateTime": timestamp(resource.created_at),
        url_property: resource.url,
        "createdBy": identity_set(resource.created_by),
        "lastModifiedBy": identity_set(resource.created_by),
    }


def submission_resource_json(item: SubmissionResource) -> Json:
    return {
        "id": item.id,
        "assignmentResourceUrl": item.assignment_resource_url,
        "resource": resource_json(item.resource),
    }


def assignment_resource_json(item: AssignmentResource) -> Json:
    return {
        "id": item.id,
        "distributeForStudentWork": item.distribute_for_student_work,
        "resource": resource_json(item.resource),
    }


# -- submissions ---------------------------------------------------------------------------------------------------


def submission_status(state: SubmissionState, include_unknown: bool) -> tuple[str, datetime | None, Actor]:
    """(status, returnedDateTime, returnedBy) as served: without the Prefer header `reassigned` and `excused` come
    after unknownFutureValue and are shown as `returned`, with their own time and actor in the returned* fields."""
    if include_unknown or state.status not in ("reassigned", "excused"):
        return state.status, state.returned_at, state.returned_by
    if state.status == "reassigned":
        return "returned", state.reassigned_at, state.reassigned_by
    return "returned", state.excused_at, state.excused_by


def submission_json(submission: Submission, state: SubmissionState, include_unknown: bool) -> Json:
    status, returned_at, returned_by = submission_status(state, include_unknown)
    return {
        "assignmentId": submission.assignment_id,
        "status": status,
        "submittedDateTime": timestamp(state.submitted_at),
        "unsubmittedDateTime": timestamp(state.unsubmitted_at),
        "returnedDateTime": timestamp(returned_at),
        "reassignedDateTime": timestamp(state.reassigned_at),
        "excusedDateTime": timestamp(state.excused_at),
        "lastModifiedDateTime": timestamp(state.last_modified_at),
        "resourcesFolderUrl": None,
        "webUrl": teams_link("speed-grader", submission.class_id, submission.assignment_id, submission.id),
        "id": submission.id,
        "recipient": {"@odata.type": INDIVIDUAL_RECIPIENT, "userId": submission.student_id},
        "submittedBy": identity_set(state.submitted_by),
        "unsubmittedBy": identity_set(state.unsubmitted_by),
        "returnedBy": identity_set(returned_by),
        "reassignedBy": identity_set(state.reassigned_by),
        "excusedBy": identity_set(state.excused_by),
        "lastModifiedBy": identity_set(state.last_modified_by),
    }


# -- outcomes ------------------------------------------------------------------------------------------------------


def points_grade_json(grade: PointsGrade | None, version: str) -> Json | None:
    if grade is None:
        return None
    body: Json = {
        "gradedDateTime": timestamp(grade.graded_at),
        "points": number(grade.points),
        "gradedBy": identity_set(grade.graded_by),
    }
    if version == "beta":
        body["grade"] = None  # beta-only: the letter from a grading scheme; the sandbox has no schemes
    return body


def feedback_json(feedback: Feedback | None) -> Json | None:
    if feedback is None:
        return None
    return {
        "feedbackDateTime": timestamp(feedback.feedback_at),
        "text": item_body(feedback.text),
        "feedbackBy": identity_set(feedback.feedback_by),
    }


def _quality_feedback(items: tuple[QualityFeedback, ...]) -> list[Json]:
    return [{"qualityId": item.quality_id, "feedback": item_body(item.feedback)} for item in items]


def _selections(items: tuple[QualitySelection, ...]) -> list[Json]:
    return [{"qualityId": item.quality_id, "columnId": item.column_id} for item in items]


def outcome_type(outcome: Outcome) -> str:
    return OUTCOME_TYPES[type(outcome)]


def outcome_json(outcome: Outcome, version: str, student_view: bool = False) -> Json:
    """An outcome; in a student's view the working (not yet returned) values are hidden."""
    body: Json = {
        "@odata.type": outcome_type(outcome),
        "lastModifiedDateTime": timestamp(outcome.last_modified_at),
        "id": outcome.id,
    }
    if isinstance(outcome, FeedbackResourceOutcome):
        body["resourceStatus"] = outcome.resource_status
    body["lastModifiedBy"] = identity_set(outcome.last_modified_by)
    if isinstance(outcome, PointsOutcome):
        body["points"] = points_grade_json(outcome.published_points if student_view else outcome.points, version)
        body["publishedPoints"] = points_grade_json(outcome.published_points, version)
    elif isinstance(outcome, FeedbackOutcome):
        body["feedback"] = feedback_json(outcome.published_feedback if student_view else outcome.feedback)
        body["publishedFeedback"] = feedback_json(outcome.published_feedback)
    elif isinstance(outcome, RubricOutcome):
        working_feedback = outcome.published_quality_feedback if student_view else outcome.quality_feedback
        working_levels = outcome.published_selected_levels if student_view else outcome.selected_levels
        body["rubricQualityFeedback"] = _quality_feedback(working_feedback)
        body["rubricQualitySelectedLevels"] = _selections(working_levels)
        body["publishedRubricQualityFeedback"] = _quality_feedback(outcome.published_quality_feedback)
        body["publishedRubricQualitySelectedLevels"] = _selections(outcome.published_selected_levels)
    elif isinstance(outcome, FeedbackResourceOutcome):
        body["feedbackResource"] = resource_json(outcome.resource)
    return body
