"""The ``send-campaign`` form: its values as a :class:`~domain.campaign.CampaignRequest`, or a
refusal that names each field by the label the form shows, never by its Python name.

A run created without the UI's validation (the API, a script) fails here, at once, with
the same words an advisor sees in the form.
"""

from __future__ import annotations

from typing import Any

from domain.campaign import CampaignRequest


class CampaignRefused(RuntimeError):
    """The campaign was not sent, and why (the flow run ends Failed with this message)."""

    def __init__(self, message: str, result: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.result = result or {}


def checked_request(campaign: Any) -> CampaignRequest:
    """The form's values as a request, or a refusal naming each field by its form label
    (a run created without the UI's validation fails here, at once)."""
    from pydantic import ValidationError

    if isinstance(campaign, CampaignRequest):
        return campaign
    try:
        return CampaignRequest.model_validate(campaign)
    except ValidationError as exc:
        raise CampaignRefused(
            "the campaign's fields are not valid: " + describe_errors(exc, CampaignRequest)
        ) from None


def describe_errors(exc: Any, model: Any) -> str:
    """Pydantic errors as "Label: problem" using the form's titles, never raw field names."""
    from pydantic import BaseModel

    parts = []
    for error in exc.errors():
        labels = []
        current: Any = model
        for step in error["loc"]:
            fields = (
                {key: f for name, f in current.model_fields.items() for key in (name, f.alias)}
                if isinstance(current, type) and issubclass(current, BaseModel)
                else {}
            )
            field = fields.get(str(step))
            labels.append(field.title if field is not None and field.title else str(step))
            annotation = field.annotation if field is not None else None
            current = annotation if isinstance(annotation, type) else None
        # A validator's own sentence reads better without pydantic's "Value error, ".
        problem = str(error["msg"]).removeprefix("Value error, ")
        parts.append(f"{' › '.join(labels) or 'the form'}: {problem}")
    return "; ".join(parts)


__all__ = ["CampaignRefused", "checked_request", "describe_errors"]
