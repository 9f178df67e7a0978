"""Money: a USD amount is a `Decimal` with 12 decimal places, stored as `numeric(28, 12)`."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal, overload

from django.db import models
from django.db.models.expressions import Combinable

# What a DecimalField accepts on assignment (django-stubs' own set type for it).
_DecimalIn = str | float | Decimal | Combinable


# Overloaded on `null` so the model attributes stay typed as they would be with a direct
# models.DecimalField(...) call: Decimal, or Decimal | None for a nullable field.
@overload
def money_field(
    *, null: Literal[True], **kwargs: Any
) -> models.DecimalField[_DecimalIn | None, Decimal | None]: ...
@overload
def money_field(
    *, null: Literal[False] = ..., **kwargs: Any
) -> models.DecimalField[_DecimalIn, Decimal]: ...
def money_field(**kwargs: Any) -> models.DecimalField[Any, Any]:
    """A USD amount with 12 decimals: event costs, rollups, budgets, exact invoice sums."""
    return models.DecimalField(max_digits=28, decimal_places=12, **kwargs)
