"""The DAG's run parameters as Airflow `Param`s, made from their one declaration (`musicrec.settings`)."""

from __future__ import annotations

from airflow.sdk import Param

from musicrec import settings


def dag_params(project_dir=settings.PROJECT_DIR) -> dict[str, Param]:
    """A `Param` per run parameter, in the trigger form's sections. An optional parameter may be left empty
    in the form (null), so the form does not mark it required."""
    defaults = settings.defaults(project_dir)
    return {p.name: Param(defaults[p.name], **_schema(p)) for p in settings.PARAMETERS}


def _schema(p: settings.Parameter) -> dict:
    schema = {"type": ["null", p.type] if p.optional else p.type, "title": p.title, "section": p.section}
    # The form shows `description` as plain text and `description_md` as Markdown.
    schema["description_md" if "`" in p.description else "description"] = p.description
    if p.type == "array":
        schema["items"] = {"type": "string"}
    if p.type == "string" and not p.optional:
        schema["minLength"] = 1
    if p.choices:
        schema["enum"] = list(p.choices)
    for bound in ("minimum", "maximum"):
        if getattr(p, bound) is not None:
            schema[bound] = getattr(p, bound)
    return schema
