"""The fixed words of the documents, in English and Spanish.

Patient-facing text (the CMS Standardized Format: cover letter, Medication Action Plan,
Personal Medication List) exists in both languages; the prescriber letter is in English.
What people typed (a medication's name, how it is taken) is shown as typed. A test checks
that both languages have every entry.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

Language = Literal["en", "es"]
LANGUAGES: tuple[Language, ...] = ("en", "es")

_MONTHS = {
    "en": (
        "January February March April May June July August September October November December"
    ).split(),
    "es": (
        "enero febrero marzo abril mayo junio julio agosto septiembre octubre noviembre diciembre"
    ).split(),
}


def long_date(day: dt.date, lang: Language) -> str:
    """`November 27, 2026` / `27 de noviembre de 2026`."""
    month = _MONTHS[lang][day.month - 1]
    if lang == "es":
        return f"{day.day} de {month} de {day.year}"
    return f"{month} {day.day}, {day.year}"


def iso_date(text: str | None, lang: Language) -> str | None:
    """A panel date (YYYY-MM-DD) written out, or None when there is none."""
    if not text:
        return None
    return long_date(dt.date.fromisoformat(text), lang)


# -- values of choice fields ---------------------------------------------------------------

STATUS: dict[Language, dict[str, str]] = {
    "en": {
        "active": "Taking",
        "stopped": "Stopped",
        "on-hold": "On hold",
        "not-taken": "Not taking",
        "entered-in-error": "Listed by mistake",
    },
    "es": {
        "active": "Lo tomo",
        "stopped": "Lo dejé",
        "on-hold": "En pausa",
        "not-taken": "No lo tomo",
        "entered-in-error": "Anotado por error",
    },
}

KIND: dict[Language, dict[str, str]] = {
    "en": {
        "prescription": "Prescription",
        "otc": "Over the counter",
        "herbal": "Herbal",
        "vitamin": "Vitamin",
        "mineral": "Mineral",
    },
    "es": {
        "prescription": "Con receta",
        "otc": "Sin receta",
        "herbal": "Hierba medicinal",
        "vitamin": "Vitamina",
        "mineral": "Mineral",
    },
}

# Where a reconciled fact came from; the Personal Medication List's "the source of the list".
SOURCE: dict[Language, dict[str, str]] = {
    "en": {
        "patient": "what you told us",
        "fill-history": "your pharmacy fill records",
        "chart": "your medical record",
        "other": "other sources",
    },
    "es": {
        "patient": "lo que usted nos dijo",
        "fill-history": "los registros de su farmacia",
        "chart": "su historia clínica",
        "other": "otras fuentes",
    },
}

ADHERENCE: dict[Language, dict[str, str]] = {
    "en": {
        "as-prescribed": "As directed",
        "sometimes-missed": "I sometimes miss a dose",
        "often-missed": "I often miss a dose",
        "not-taking": "I am not taking it",
        "unknown": "Not sure",
    },
    "es": {
        "as-prescribed": "Como me indicaron",
        "sometimes-missed": "A veces me salto una dosis",
        "often-missed": "Muchas veces me salto una dosis",
        "not-taking": "No lo estoy tomando",
        "unknown": "No estoy seguro",
    },
}

CONFIRMATION: dict[Language, dict[str, str]] = {
    "en": {
        "confirmed": "Yes, this is how I take it",
        "corrected": "I corrected how I take it",
        "needs-confirming": "Changed after I confirmed it",
    },
    "es": {
        "confirmed": "Sí, así lo tomo",
        "corrected": "Corregí cómo lo tomo",
        "needs-confirming": "Cambió después de que lo confirmé",
    },
}

# A recommendation's outcome as the patient reads it.
OUTCOME: dict[Language, dict[str, str]] = {
    "en": {
        "proposed": "Waiting for your doctor's answer",
        "no-response": "Waiting for your doctor's answer",
        "accepted": "Your doctor agreed",
        "declined": "Not changed",
    },
    "es": {
        "proposed": "Esperando la respuesta de su médico",
        "no-response": "Esperando la respuesta de su médico",
        "accepted": "Su médico estuvo de acuerdo",
        "declined": "No se cambió",
    },
}

# -- the prescriber letter (English) -------------------------------------------------------

PROBLEM_CATEGORY = {
    "unnecessary-therapy": "Unnecessary drug therapy",
    "needs-additional-therapy": "Needs additional drug therapy",
    "ineffective-drug": "Ineffective drug",
    "dosage-too-low": "Dosage too low",
    "adverse-drug-reaction": "Adverse drug reaction",
    "dosage-too-high": "Dosage too high",
    "nonadherence": "Nonadherence",
}
CHANGE_KIND = {
    "start": "Start a medication",
    "stop": "Stop a medication",
    "dose-change": "Change the dose",
    "frequency-change": "Change how often",
    "switch": "Switch to another medication",
    "other": "Other change",
}
DECISION = {
    "proposed": "Awaiting your response",
    "no-response": "No response in the call",
    "accepted": "Accepted",
    "declined": "Declined",
}
PROPOSED_LABEL = {
    "name": "Medication",
    "strength": "Strength",
    "form": "Form",
    "how_taken": "How taken",
    "why": "Why",
    "status": "Status",
    "stop_date": "Stop date",
    "why_stopped": "Why stopped",
}

# -- the CMS Standardized Format's fixed text ---------------------------------------------

WORDS: dict[Language, dict[str, str]] = {
    "en": {
        "title": "Your medication review",
        "cover_heading": "Your recent medication review",
        "dear": "Dear {name}:",
        "thanks": (
            "Thank you for talking with me on {date} about your health and medications. "
            "Medicare's MTM (Medication Therapy Management) program helps you make sure that "
            "your medications are working."
        ),
        "along_with": (
            "Along with this letter are an action plan (Medication Action Plan) and a "
            "medication list (Personal Medication List). The action plan has steps you "
            "should take to get the best results from your medications. The medication list "
            "will help you keep track of your medications and how to use them the right way."
        ),
        "bullet_bring": (
            "Have your action plan and medication list with you when you talk with your "
            "doctors, pharmacists, and other health care providers."
        ),
        "bullet_update": (
            "Ask your doctors, pharmacists, and other health care providers to update them at "
            "every visit."
        ),
        "bullet_hospital": (
            "Take your medication list with you if you go to the hospital or emergency room."
        ),
        "bullet_family": (
            "Give a copy of the action plan and medication list to your family or caregivers."
        ),
        "call_us": (
            "If you want to talk about this letter or any of the papers with it, please call "
            "{provider}{contact}."
        ),
        "call_us_contact": " at {contact}",
        "look_forward": (
            "We look forward to working with you and your doctors to help you stay healthy "
            "through the {plan} MTM program."
        ),
        "look_forward_no_plan": (
            "We look forward to working with you and your doctors to help you stay healthy."
        ),
        "sincerely": "Sincerely,",
        "date_of_service": "Date of service",
        "map_title": "Medication Action Plan",
        "for_name": "for {name}",
        "dob": "Date of birth",
        "map_intro": (
            "This action plan will help you get the best results from your medications if you:"
        ),
        "map_step_1": "Read “What we talked about.”",
        "map_step_2": "Take the steps listed in the “What I need to do” boxes.",
        "map_step_3": "Fill in “What I did and when I did it.”",
        "map_step_4": "Fill in “My follow-up plan” and “Questions I want to ask.”",
        "map_keep": (
            "Have this action plan with you when you talk with your doctors, pharmacists, "
            "and other health care providers. Share this with your family or caregivers too."
        ),
        "date_prepared": "Date prepared",
        "talked_about": "What we talked about:",
        "to_do": "What I need to do:",
        "what_i_did": "What I did and when I did it:",
        "no_plan_items": "We did not write down any action steps in this review.",
        "changes_heading": "Changes we talked about",
        "follow_up": "My follow-up plan (add notes about next steps):",
        "questions": "Questions I want to ask (include topics about medications or therapy):",
        "map_call": "If you have any questions about your action plan, call {provider}{contact}.",
        "pml_title": "Personal Medication List",
        "pml_made": "This medication list was made for you after we talked.",
        "pml_sources": "We also used information from {sources}.",
        "pml_use_blank": (
            "Use blank rows to add new medications. Then fill in the dates you started using them."
        ),
        "pml_cross_out": (
            "Cross out medications when you no longer use them. Then write the date and why "
            "you stopped using them."
        ),
        "pml_update": (
            "Ask your doctors, pharmacists, and other health care providers to update this "
            "list at every visit."
        ),
        "pml_keep": (
            "Keep this list up-to-date with: prescription medications, over the counter "
            "drugs, herbals, vitamins, and minerals."
        ),
        "pml_hospital": (
            "If you go to the hospital or emergency room, take this list with you. Share this "
            "with your family or caregivers too."
        ),
        "allergies": "Allergies or side effects",
        "problem_medicine": "Medicine I had a problem with:",
        "what_happened": "What happened to me:",
        "medication": "Medication:",
        "how_i_use": "How I use it:",
        "why_i_use": "Why I use it:",
        "prescriber": "Prescriber:",
        "date_started": "Date I started using it:",
        "date_stopped": "Date I stopped using it:",
        "why_stopped": "Why I stopped using it:",
        "kind": "Kind:",
        "status": "Now:",
        "source": "Where this came from:",
        "how_i_take_it": "How I told you I take it:",
        "how_often": "How often I take it as directed:",
        "my_note": "My note:",
        "confirmed": "I confirmed:",
        "team_note": "Note from my care team:",
        "no_medications": "No medications were recorded in this review.",
        "other_information": "Other information:",
        "page": "Page",
        "preview": "Preview: this consult is still in progress.",
    },
    "es": {
        "title": "Su revisión de medicamentos",
        "cover_heading": "Su revisión de medicamentos reciente",
        "dear": "Estimado(a) {name}:",
        "thanks": (
            "Gracias por hablar conmigo el {date} sobre su salud y sus medicamentos. El "
            "programa MTM (Manejo de la Terapia de Medicamentos) de Medicare le ayuda a "
            "asegurarse de que sus medicamentos estén funcionando."
        ),
        "along_with": (
            "Junto con esta carta encontrará un plan de acción (Plan de Acción de "
            "Medicamentos) y una lista de medicamentos (Lista Personal de Medicamentos). El "
            "plan de acción tiene los pasos que debe seguir para obtener los mejores "
            "resultados de sus medicamentos. La lista de medicamentos le ayudará a llevar la "
            "cuenta de sus medicamentos y de cómo usarlos correctamente."
        ),
        "bullet_bring": (
            "Tenga a mano su plan de acción y su lista de medicamentos cuando hable con sus "
            "médicos, farmacéuticos y otros proveedores de salud."
        ),
        "bullet_update": (
            "Pida a sus médicos, farmacéuticos y otros proveedores de salud que los "
            "actualicen en cada visita."
        ),
        "bullet_hospital": (
            "Lleve su lista de medicamentos si va al hospital o a la sala de emergencias."
        ),
        "bullet_family": (
            "Dé una copia del plan de acción y de la lista de medicamentos a su familia o a "
            "quienes le cuidan."
        ),
        "call_us": (
            "Si quiere hablar sobre esta carta o los documentos que la acompañan, llame a "
            "{provider}{contact}."
        ),
        "call_us_contact": " al {contact}",
        "look_forward": (
            "Esperamos trabajar con usted y sus médicos para ayudarle a mantenerse sano a "
            "través del programa MTM de {plan}."
        ),
        "look_forward_no_plan": (
            "Esperamos trabajar con usted y sus médicos para ayudarle a mantenerse sano."
        ),
        "sincerely": "Atentamente,",
        "date_of_service": "Fecha del servicio",
        "map_title": "Plan de Acción de Medicamentos",
        "for_name": "para {name}",
        "dob": "Fecha de nacimiento",
        "map_intro": (
            "Este plan de acción le ayudará a obtener los mejores resultados de sus "
            "medicamentos si usted:"
        ),
        "map_step_1": "Lee «De qué hablamos».",
        "map_step_2": "Sigue los pasos de los recuadros «Lo que tengo que hacer».",
        "map_step_3": "Completa «Lo que hice y cuándo lo hice».",
        "map_step_4": "Completa «Mi plan de seguimiento» y «Preguntas que quiero hacer».",
        "map_keep": (
            "Tenga este plan de acción a mano cuando hable con sus médicos, farmacéuticos y "
            "otros proveedores de salud. Compártalo también con su familia o con quienes le "
            "cuidan."
        ),
        "date_prepared": "Fecha de preparación",
        "talked_about": "De qué hablamos:",
        "to_do": "Lo que tengo que hacer:",
        "what_i_did": "Lo que hice y cuándo lo hice:",
        "no_plan_items": "No anotamos pasos a seguir en esta revisión.",
        "changes_heading": "Cambios de los que hablamos",
        "follow_up": "Mi plan de seguimiento (anote los próximos pasos):",
        "questions": (
            "Preguntas que quiero hacer (incluya temas sobre medicamentos o tratamientos):"
        ),
        "map_call": "Si tiene preguntas sobre su plan de acción, llame a {provider}{contact}.",
        "pml_title": "Lista Personal de Medicamentos",
        "pml_made": (
            "Esta lista de medicamentos se hizo para usted después de nuestra conversación."
        ),
        "pml_sources": "También usamos información de {sources}.",
        "pml_use_blank": (
            "Use las filas en blanco para agregar medicamentos nuevos. Luego anote la fecha "
            "en que empezó a usarlos."
        ),
        "pml_cross_out": (
            "Tache los medicamentos que ya no usa. Luego anote la fecha y por qué dejó de usarlos."
        ),
        "pml_update": (
            "Pida a sus médicos, farmacéuticos y otros proveedores de salud que actualicen "
            "esta lista en cada visita."
        ),
        "pml_keep": (
            "Mantenga esta lista al día con: medicamentos con receta, medicamentos sin "
            "receta, hierbas medicinales, vitaminas y minerales."
        ),
        "pml_hospital": (
            "Si va al hospital o a la sala de emergencias, lleve esta lista. Compártala "
            "también con su familia o con quienes le cuidan."
        ),
        "allergies": "Alergias o efectos secundarios",
        "problem_medicine": "Medicamento que me causó un problema:",
        "what_happened": "Lo que me pasó:",
        "medication": "Medicamento:",
        "how_i_use": "Cómo lo uso:",
        "why_i_use": "Por qué lo uso:",
        "prescriber": "Quién me lo recetó:",
        "date_started": "Fecha en que empecé a usarlo:",
        "date_stopped": "Fecha en que dejé de usarlo:",
        "why_stopped": "Por qué dejé de usarlo:",
        "kind": "Tipo:",
        "status": "Ahora:",
        "source": "De dónde viene esta información:",
        "how_i_take_it": "Cómo le dije que lo tomo:",
        "how_often": "Con qué frecuencia lo tomo como me indicaron:",
        "my_note": "Mi nota:",
        "confirmed": "Confirmé:",
        "team_note": "Nota de mi equipo de salud:",
        "no_medications": "No se anotaron medicamentos en esta revisión.",
        "other_information": "Otra información:",
        "page": "Página",
        "preview": "Vista previa: esta consulta todavía está en curso.",
    },
}


def join_words(items: list[str], lang: Language) -> str:
    """`a, b and c` / `a, b y c`."""
    if len(items) <= 1:
        return "".join(items)
    conjunction = " y " if lang == "es" else " and "
    return ", ".join(items[:-1]) + conjunction + items[-1]
