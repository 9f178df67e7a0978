"""`manage.py set_price`: a dated price per million tokens, clear errors for bad input."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from pricing.models import PriceOverride
from tests.conftest import World


def test_it_sets_a_dated_price_and_says_how_to_preview_a_re_price(world: World) -> None:
    out = StringIO()
    call_command(
        "set_price", "acme", "Anthropic", "claude-sonnet-4-5", "--input", "2.7",
        "--output", "13.5", "--cache-read", "0.27", "--from", "2026-11-01", stdout=out,
    )  # fmt: skip
    override = PriceOverride.objects.for_tenant(world.tenant).get()
    assert (override.provider, override.model) == ("anthropic", "claude-sonnet-4-5")
    assert override.effective_from == datetime(2026, 11, 1, tzinfo=UTC)
    assert (override.input_per_mtok, override.cache_read_per_mtok) == (
        Decimal("2.7"),
        Decimal("0.27"),
    )
    assert override.cache_write_per_mtok is None  # billed as input
    assert "rollup --tenant acme --since 2026-11-01 --dry-run" in out.getvalue()
    assert not PriceOverride.objects.for_tenant(world.other_tenant).exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope", "openai", "gpt-4o", "--input", "1", "--output", "2", "--from", "2026-01-01"],
         "tenant 'nope' does not exist"),
        (["acme", "openai", "gpt-4o", "--input", "cheap", "--output", "2", "--from", "2026-01-01"],
         "--input: Enter a number."),
        (["acme", "openai", "gpt-4o", "--input", "1", "--output", "-2", "--from", "2026-01-01"],
         "--output: Ensure this value is greater than or equal to 0."),
        (["acme", "openai", "gpt-4o", "--input", "1", "--output", "2", "--from", "yesterday"],
         "--from: Enter a valid date/time."),
        (["acme", "openai", "gpt-4o", "--input", "1", "--output", "2", "--cache-write", "NaN",
          "--from", "2026-01-01"], "--cache-write: Enter a number."),
    ],
)  # fmt: skip
def test_it_explains_bad_input(world: World, args: list[str], message: str) -> None:
    with pytest.raises(CommandError) as raised:
        call_command("set_price", *args, stdout=StringIO())
    assert message in str(raised.value)
    assert not PriceOverride.objects.for_tenant(world.tenant).exists()
