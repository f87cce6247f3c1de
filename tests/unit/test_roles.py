import pytest

from models.roles import Action, Role, is_allowed

# DESIGN.md "Roles and permissions", every cell.
MATRIX = {
    Action.JOIN_WITHOUT_WAITING: {"pharmacist": True, "clinician": True, "patient": False},
    Action.MANAGE_PARTICIPANTS: {"pharmacist": True, "clinician": False, "patient": False},
    Action.EDIT_MEDICATION: {"pharmacist": True, "clinician": True, "patient": False},
    Action.ANNOTATE: {"pharmacist": True, "clinician": True, "patient": False},
    Action.DECIDE_RECOMMENDATION: {"pharmacist": False, "clinician": True, "patient": False},
    Action.CONFIRM_HOW_TAKEN: {"pharmacist": True, "clinician": True, "patient": True},
    Action.READ_AUDIT: {"pharmacist": True, "clinician": True, "patient": False},
    Action.READ_CARE_TEAM: {"pharmacist": True, "clinician": True, "patient": False},
    Action.SHARE_SCREEN: {"pharmacist": True, "clinician": True, "patient": False},
}


def test_matrix_covers_every_action() -> None:
    assert set(MATRIX) == set(Action)


@pytest.mark.parametrize(
    ("action", "role", "allowed"),
    [
        (action, Role(role), allowed)
        for action, row in MATRIX.items()
        for role, allowed in row.items()
    ],
)
def test_permission_cell(action: Action, role: Role, allowed: bool) -> None:
    assert is_allowed(role, action) is allowed


def test_patient_screen_share_is_configurable() -> None:
    assert is_allowed(Role.PATIENT, Action.SHARE_SCREEN, patient_may_share_screen=True)
    assert is_allowed(Role.CLINICIAN, Action.SHARE_SCREEN, patient_may_share_screen=True)


def test_each_role_has_a_label() -> None:
    assert [role.label for role in Role] == ["Pharmacist", "Clinical team", "Patient"]
