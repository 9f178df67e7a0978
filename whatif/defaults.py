"""Which models the comparison offers when the link names none, and reading a `models` list."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from genai_prices import data_snapshot

from dashboard.filters import Filters
from pricing.catalog import price_history
from pricing.resolver import normalise_provider
from tenants.labels import TeamLabels
from tenants.models import Tenant
from whatif import selectors
from whatif.prices import Candidate, candidate

# The models the seed article's comparison widget offers.
SEED_MODELS = (
    "anthropic/claude-3-5-sonnet",
    "openai/gpt-4o-mini",
    "anthropic/claude-3-5-haiku",
)
MAX_MODELS = 8


class BadModels(ValueError):
    """A `models` list the comparison cannot use; the message names what is wrong."""


def cheapest_of_provider(provider: str, tokens: tuple[int, int, int, int]) -> str | None:
    """The provider's catalog model (priced for input and output) that costs least today
    for these token sums: the cheapest of the family for this very mix."""
    now = datetime.now(UTC)
    key = normalise_provider(provider)
    best: tuple[Decimal, str] | None = None
    for prov in data_snapshot.get_snapshot().providers:
        if prov.id != key:
            continue
        for info in prov.models:
            history = price_history(prov.id, info.id.lower())
            price = history.at(now) if history else None
            mp = price.model_price if price else None
            if price is None or mp is None or mp.input_mtok is None or mp.output_mtok is None:
                continue
            cost = price.base_cost_of(*tokens)
            if best is None or cost < best[0]:
                best = (cost, f"{prov.id}/{info.id.lower()}")
    return None if best is None else best[1]


def default_models(tenant: Tenant, f: Filters, teams: TeamLabels) -> list[str]:
    """The seed's three models, the scope's most used one and its provider's cheapest."""
    names = list(SEED_MODELS)
    used = selectors.most_used(tenant, f, teams)
    if used is not None:
        most = candidate(tenant, *used)
        if most.known:  # a model nobody priced cannot be compared with
            names.append(most.label)
        tokens = scope_tokens(tenant, f, teams)
        cheapest = cheapest_of_provider(used[0], tokens)
        if cheapest:
            names.append(cheapest)
    return list(dict.fromkeys(names))


def scope_tokens(tenant: Tenant, f: Filters, teams: TeamLabels) -> tuple[int, int, int, int]:
    rows = selectors.buckets(tenant, f, teams, hourly=f.hourly)
    sums = [sum(b.tokens[i] for b in rows) for i in range(4)]
    return (sums[0], sums[1], sums[2], sums[3])


def parse_models(tenant: Tenant, text: str) -> list[Candidate]:
    """`provider/model,…` into candidates; unknown ones are an error naming them."""
    names = list(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    if len(names) > MAX_MODELS:
        raise BadModels(f"at most {MAX_MODELS} models at once")
    malformed = [n for n in names if "/" not in n or not all(n.split("/", 1))]
    if malformed:
        raise BadModels(f"write each model as provider/model: {', '.join(malformed)}")
    out = [candidate(tenant, *n.split("/", 1)) for n in names]
    unknown = [c.label for c in out if not c.known]
    if unknown:
        raise BadModels(f"no catalog price and no price of yours for {', '.join(unknown)}")
    return out
