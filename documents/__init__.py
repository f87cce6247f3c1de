"""The documents a consult produces (issue 9): the CMS Standardized Format for the patient,
the prescriber letter and a FHIR R4 Bundle, built from the panel at a seq. Imports models
only (and its template and PDF libraries); the server loads, serves and signs."""
