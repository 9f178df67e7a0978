"""Money: a USD amount is a `Decimal` with 12 decimal places, stored as `numeric(28, 12)`."""

from __future__ import annotations

from decimal import MAX_PREC, Context, Decimal
from typing import Any, Literal, overload

from django.db import models
from django.db.models.expressions import Combinable

# What a DecimalField accepts on assignment (django-stubs' own set type for it).
DecimalIn = str | float | Decimal | Combinable


# Overloaded on `null` so the model attributes stay typed as they would be with a direct
# models.DecimalField(...) call: Decimal, or Decimal | None for a nullable field.
@overload
def money_field(
    *, null: Literal[True], **kwargs: Any
) -> models.DecimalField[DecimalIn | None, Decimal | None]: ...
@overload
def money_field(
    *, null: Literal[False] = ..., **kwargs: Any
) -> models.DecimalField[DecimalIn, Decimal]: ...
def money_field(**kwargs: Any) -> models.DecimalField[Any, Any]:
    """A USD amount with 12 decimals: event costs, rollups, budgets, exact invoice sums."""
    return models.DecimalField(max_digits=28, decimal_places=12, **kwargs)


# Wide enough for any sum PostgreSQL returns: quantizing never fails for lack of digits.
_WIDE = Context(prec=MAX_PREC)


def decimal_text(value: Decimal | int | None, places: int | None = None) -> str:
    """A decimal as every API answer and export prints it: plain digits, never exponent
    notation (`str()` prints a zero sum of 12-decimal costs as "0E-12" and $0.00000015 as
    "1.5E-7"), never "-0"; rounded half-even to `places` decimals when given."""
    number = Decimal(0) if value is None else Decimal(value)
    if places is not None:
        number = number.quantize(Decimal(1).scaleb(-places), context=_WIDE)
    if number.is_zero():
        number = number.copy_abs()
    return format(number, "f")
