"""The permission-matrix cells a panel mutation exercises, shared by domain and socket tests."""

from __future__ import annotations

from typing import Any

# DESIGN.md "Roles and permissions": the rows about the medication panel.
CELLS: list[tuple[str, dict[str, bool]]] = [
    ("add medication", {"pharmacist": True, "clinician": True, "patient": False}),
    ("edit medication", {"pharmacist": True, "clinician": True, "patient": False}),
    ("discontinue medication", {"pharmacist": True, "clinician": True, "patient": False}),
    ("annotate", {"pharmacist": True, "clinician": True, "patient": False}),
    ("record problem", {"pharmacist": True, "clinician": True, "patient": False}),
    ("record recommendation", {"pharmacist": True, "clinician": True, "patient": False}),
    ("decide recommendation", {"pharmacist": False, "clinician": True, "patient": False}),
    ("confirm how taken", {"pharmacist": True, "clinician": True, "patient": True}),
    ("patient note", {"pharmacist": True, "clinician": True, "patient": True}),
    ("reorder", {"pharmacist": True, "clinician": True, "patient": False}),
]

CELL_PARAMS = [(action, role, allowed) for action, row in CELLS for role, allowed in row.items()]

SETUP_MEDICATION = {"name": "Metformin", "strength": "500 mg", "how_taken": "twice daily"}
SETUP_RECOMMENDATION = {"text": "Reduce dose", "to": "prescriber"}


def mutation_for(action: str, med: dict[str, Any], rec: dict[str, Any]) -> dict[str, Any]:
    """The mutation that performs `action`, given an existing medication and recommendation."""
    mid = "try-" + action.replace(" ", "-")
    base = {"mutation_id": mid, "entity": "medication", "entity_id": med["id"], "op": "set"}
    return {
        "add medication": {"mutation_id": mid, "op": "add", "entity": "medication",
                           "value": {"name": "Aspirin"}},
        "edit medication": {**base, "field": "how_taken", "value": "once daily",
                            "base_version": med["versions"]["how_taken"]},
        "discontinue medication": {**base, "field": "status", "value": "stopped",
                                   "base_version": med["versions"]["status"]},
        "annotate": {**base, "field": "notes", "value": "check kidney function"},
        "record problem": {"mutation_id": mid, "op": "add", "entity": "problem",
                           "value": {"category": "dosage-too-high",
                                     "medication_ids": [med["id"]]}},
        "record recommendation": {"mutation_id": mid, "op": "add", "entity": "recommendation",
                                  "value": {"text": "Switch to XR", "to": "prescriber"}},
        "decide recommendation": {"mutation_id": mid, "op": "set", "entity": "recommendation",
                                  "entity_id": rec["id"], "field": "status",
                                  "value": "accepted",
                                  "base_version": rec["versions"]["status"]},
        "confirm how taken": {**base, "field": "patient_confirmation", "value": "corrected",
                              "base_version": med["versions"]["patient_confirmation"]},
        "patient note": {**base, "field": "patient_note", "value": "I take it with dinner"},
        "reorder": {**base, "op": "move", "after": None},
    }[action]  # fmt: skip
