"""Roles in a consult and what each may do (DESIGN.md, "Roles and permissions")."""

from __future__ import annotations

import enum


class Role(enum.StrEnum):
    PHARMACIST = "pharmacist"
    CLINICIAN = "clinician"
    PATIENT = "patient"

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS = {
    Role.PHARMACIST: "Pharmacist",
    Role.CLINICIAN: "Clinical team",
    Role.PATIENT: "Patient",
}


class Action(enum.StrEnum):
    JOIN_WITHOUT_WAITING = "join_without_waiting"
    MANAGE_PARTICIPANTS = "manage_participants"  # admit, deny, remove, end consult
    EDIT_MEDICATION = "edit_medication"  # add, edit, discontinue
    ANNOTATE = "annotate"  # annotate, record a problem or recommendation
    DECIDE_RECOMMENDATION = "decide_recommendation"  # accept or decline
    CONFIRM_HOW_TAKEN = "confirm_how_taken"  # confirm "how I take it", add a patient note
    READ_AUDIT = "read_audit"
    READ_CARE_TEAM = "read_care_team"  # problems, recommendations, notes kept to the care team
    SHARE_SCREEN = "share_screen"


_MATRIX: dict[Action, frozenset[Role]] = {
    Action.JOIN_WITHOUT_WAITING: frozenset({Role.PHARMACIST, Role.CLINICIAN}),
    Action.MANAGE_PARTICIPANTS: frozenset({Role.PHARMACIST}),
    Action.EDIT_MEDICATION: frozenset({Role.PHARMACIST, Role.CLINICIAN}),
    Action.ANNOTATE: frozenset({Role.PHARMACIST, Role.CLINICIAN}),
    Action.DECIDE_RECOMMENDATION: frozenset({Role.CLINICIAN}),
    Action.CONFIRM_HOW_TAKEN: frozenset({Role.PHARMACIST, Role.CLINICIAN, Role.PATIENT}),
    Action.READ_AUDIT: frozenset({Role.PHARMACIST, Role.CLINICIAN}),
    Action.READ_CARE_TEAM: frozenset({Role.PHARMACIST, Role.CLINICIAN}),
    Action.SHARE_SCREEN: frozenset({Role.PHARMACIST, Role.CLINICIAN}),
}


def is_allowed(role: Role, action: Action, *, patient_may_share_screen: bool = False) -> bool:
    """Whether `role` may perform `action` under the default matrix."""
    if action is Action.SHARE_SCREEN and role is Role.PATIENT:
        return patient_may_share_screen
    return role in _MATRIX[action]
