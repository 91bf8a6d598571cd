"""Turn the service layer's Django ``ValidationError`` into DRF's, keeping the field keys.

Why: services raise field-keyed Django errors ("cidr": "192.168.1.5/24 is not a network address. Did you mean
192.168.1.0/24?"); API clients need the same shape as serializer errors — ``{"field": ["message", …]}`` with
un-keyed messages under ``non_field_errors`` — and a 400, not DRF's 500 for an unknown exception type.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from contextlib import contextmanager

from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework.exceptions import ValidationError
from rest_framework.settings import api_settings


def to_drf(exc: DjangoValidationError, *, nest: Collection[str] = (), under: str = "") -> ValidationError:
    """Convert ``exc``; keys listed in ``nest`` are moved into ``{under: {key: [...]}}`` (nested input)."""
    non_field = api_settings.NON_FIELD_ERRORS_KEY
    if not hasattr(exc, "error_dict"):
        return ValidationError({non_field: list(exc.messages)})
    detail: dict[str, object] = {}
    nested: dict[str, list[str]] = {}
    for field, messages in exc.message_dict.items():
        if field == NON_FIELD_ERRORS:
            detail.setdefault(non_field, []).extend(messages)  # type: ignore[union-attr]
        elif under and field in nest:
            nested[field] = list(messages)
        else:
            detail[field] = list(messages)
    if nested:
        detail[under] = nested
    return ValidationError(detail)


@contextmanager
def service_errors(*, nest: Collection[str] = (), under: str = "") -> Iterator[None]:
    """``with service_errors(): services.x(...)`` re-raises service errors as DRF 400s."""
    try:
        yield
    except DjangoValidationError as exc:
        raise to_drf(exc, nest=nest, under=under) from None
