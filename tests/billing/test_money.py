"""The money rules invoices rely on: cents per line, shares that add up, month windows."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing import months
from billing.money import largest_remainder, to_cents

D = Decimal


@pytest.mark.parametrize(
    ("exact", "cents"),
    [
        ("0.004999", "0.00"),
        ("0.005", "0.01"),
        ("0.015", "0.02"),
        ("-0.005", "-0.01"),
        ("2", "2.00"),
    ],
)
def test_it_rounds_to_cents_half_away_from_zero(exact: str, cents: str) -> None:
    assert to_cents(D(exact)) == D(cents) and str(to_cents(D(exact))) == cents


@given(
    total=st.integers(-10_000, 10_000),
    weights=st.lists(st.decimals(0, 1000, places=12), min_size=1, max_size=12).filter(
        lambda ws: sum(ws) > 0
    ),
)
def test_it_splits_cents_so_the_shares_add_up_exactly(total: int, weights: list[Decimal]) -> None:
    parts = largest_remainder(total, weights)
    assert sum(parts) == total
    whole = sum(weights)
    for part, weight in zip(parts, weights, strict=True):
        assert abs(part - total * weight / whole) < 1  # never more than a cent off its quota
        if weight == 0:
            assert part == 0


def test_it_gives_the_spare_cent_to_the_largest_remainder() -> None:
    assert largest_remainder(5, [D(3), D(1)]) == [4, 1]  # 3.75 and 1.25
    assert largest_remainder(1, [D(1), D(1)]) == [1, 0]  # a tie goes to the first


@pytest.mark.parametrize(
    ("tz", "start", "end"),
    [
        ("UTC", datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC)),
        # Daylight saving time ends on 1 November 2026 in New York, after midnight.
        (
            "America/New_York",
            datetime(2026, 10, 1, 4, tzinfo=UTC),
            datetime(2026, 11, 1, 4, tzinfo=UTC),
        ),
        (
            "Asia/Kolkata",
            datetime(2026, 9, 30, 18, 30, tzinfo=UTC),
            datetime(2026, 10, 31, 18, 30, tzinfo=UTC),
        ),
    ],
)
def test_it_turns_a_local_month_into_a_utc_window(tz: str, start: datetime, end: datetime) -> None:
    assert months.window(date(2026, 10, 1), tz) == (start, end)


@pytest.mark.parametrize("raw", ["2026-13", "2026-1", "26-10", "2026-10-01", "", "1969-12"])
def test_it_refuses_what_is_not_a_month(raw: str) -> None:
    with pytest.raises(months.BadMonth, match="a month must be YYYY-MM"):
        months.parse_month(raw)


def test_it_steps_over_year_ends() -> None:
    assert months.next_month(date(2026, 12, 1)) == date(2027, 1, 1)
    assert months.previous_month(date(2027, 1, 1)) == date(2026, 12, 1)
