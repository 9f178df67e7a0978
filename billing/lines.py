"""Invoice lines before they are stored: usage, allocation of unallocated spend, adjustments.

Pure functions over `LineDraft`s; the queries live in `billing.selectors`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from typing import Any

from billing.models import LineType
from billing.money import ZERO, cents, from_cents, largest_remainder, to_cents
from core.teams import NO_TEAM

COUNTS = (
    "requests", "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens",
    "unpriced_requests",
)  # fmt: skip
# Which kind of line an adjustment corrects, and which adjustment type corrects a kind.
BASE_TYPE = {
    LineType.USAGE: LineType.USAGE,
    LineType.ADJUSTMENT: LineType.USAGE,
    LineType.ALLOCATION: LineType.ALLOCATION,
    LineType.ALLOCATION_ADJUSTMENT: LineType.ALLOCATION,
}
ADJUSTMENT_OF = {
    LineType.USAGE: LineType.ADJUSTMENT,
    LineType.ALLOCATION: LineType.ALLOCATION_ADJUSTMENT,
}
Key = tuple[str, str, str, str]  # (base type, provider, model, feature)
ByTeam = dict[int, list["LineDraft"]]


@dataclass(frozen=True)
class LineDraft:
    line_type: str
    usage_month: date
    provider: str
    model: str
    feature: str
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    unpriced_requests: int = 0  # calls with no known price: $0, but not free
    cost_usd: Decimal = ZERO  # exact
    amount_usd: Decimal = ZERO  # cents

    @property
    def key(self) -> Key:
        return (BASE_TYPE[LineType(self.line_type)], self.provider, self.model, self.feature)

    @property
    def counts(self) -> tuple[int, ...]:
        return tuple(getattr(self, name) for name in COUNTS)

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @property
    def sort_key(self) -> tuple[object, ...]:
        # Usage first, then shares of unallocated spend, then adjustments of earlier months.
        order = list(LineType).index(LineType(self.line_type))
        return (order, self.usage_month, self.provider, self.model, self.feature)


def usage_line(month: date, row: dict[str, object]) -> LineDraft:
    """A usage line from a rollup aggregate: the cost rounded to cents, on its own."""
    cost = row["cost_usd"] if isinstance(row["cost_usd"], Decimal) else ZERO
    counts = {name: int(row[name] or 0) for name in COUNTS}  # type: ignore[call-overload]
    return LineDraft(
        line_type=LineType.USAGE,
        usage_month=month,
        provider=str(row["provider"]),
        model=str(row["model"]),
        feature=str(row["feature"]),
        cost_usd=cost,
        amount_usd=to_cents(cost),
        **counts,
    )


def team_spend(lines: Iterable[LineDraft]) -> Decimal:
    return sum((line.cost_usd for line in lines if line.line_type == LineType.USAGE), ZERO)


def allocate(by_team: ByTeam) -> ByTeam:
    """Spread the unallocated lines over the teams in proportion to their exact spend.

    Each unallocated line's cents (and its counts) are split by largest remainder, so the
    shares add up to exactly that line's amount. Without team spend nothing can be shared
    and the unallocated lines stay where they are.
    """
    unallocated = by_team.get(NO_TEAM, [])
    teams = sorted(pk for pk in by_team if pk != NO_TEAM)
    weights = [team_spend(by_team[pk]) for pk in teams]
    if not unallocated or sum(weights, ZERO) <= 0:
        return by_team
    out: ByTeam = {pk: list(by_team[pk]) for pk in teams}
    for line in unallocated:
        for pk, share in zip(teams, _split(line, weights), strict=True):
            if share.amount_usd or any(share.counts):
                out[pk].append(share)
    return out


def _split(line: LineDraft, weights: list[Decimal]) -> list[LineDraft]:
    amounts = largest_remainder(cents(line.amount_usd), weights)
    counts = {name: largest_remainder(getattr(line, name), weights) for name in COUNTS}
    shares = []
    for i, amount in enumerate(amounts):
        # The cents are what is shared, so a share's cost is its amount.
        fields: dict[str, Any] = {name: counts[name][i] for name in COUNTS}
        fields.update(cost_usd=from_cents(amount), amount_usd=from_cents(amount))
        shares.append(replace(line, line_type=LineType.ALLOCATION, **fields))
    return shares


def adjustments(month: date, now: list[LineDraft], billed: dict[Key, LineDraft]) -> list[LineDraft]:
    """What is still to bill for `month`: its lines as computed now minus what was billed.

    An adjustment is made when the amount or a count differs; its amount is the rounded
    line now minus the amounts already billed, so over all invoices each line of the month
    adds up to its rounded amount now, to the cent.
    """
    current = {line.key: line for line in now}
    out = []
    for key in sorted(current.keys() | billed.keys()):
        line = _difference(month, key, current.get(key), billed.get(key))
        if line.amount_usd or any(line.counts):
            out.append(line)
    return out


def _difference(
    month: date, key: Key, now: LineDraft | None, before: LineDraft | None
) -> LineDraft:
    base, provider, model, feature = key
    zero = LineDraft(base, month, provider, model, feature)
    now, before = now or zero, before or zero
    return LineDraft(
        line_type=ADJUSTMENT_OF[LineType(base)],
        usage_month=month,
        provider=provider,
        model=model,
        feature=feature,
        cost_usd=now.cost_usd - before.cost_usd,
        amount_usd=now.amount_usd - before.amount_usd,
        **{name: getattr(now, name) - getattr(before, name) for name in COUNTS},
    )
