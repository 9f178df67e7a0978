"""Benchmark: the re-price preview and apply over a month of a tenant's raw events.

    .venv/bin/python bench/reprice.py [--events 300000]

On a scratch database (costboard_bench_reprice, dropped and created) and Redis db 9, stores
`--events` events spread over the last 30 days (ingest's own COPY path, 1,000 per batch; five
models, ten teams, a tenth of them with cache tokens), rolls them up, then times: the preview
with the catalog's prices (nothing to change), a price added for one model (a fifth of the
events), the preview again, the apply (events written, rollups rebuilt) and a second apply
(idempotent: nothing changes). The preview is what the worker computes when `/prices/reprice/` asks for one:
the page's own part (recording the preview for the worker) and the worker's part are timed
too.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DB = "costboard_bench_reprice"
sys.path.insert(0, str(ROOT))
os.environ.update(
    DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{DB}",
    REDIS_URL="redis://127.0.0.1:6379/9",
    SECRET_KEY="bench-reprice",
    DJANGO_SETTINGS_MODULE="costboard.settings",
)
MODELS = [("openai", "gpt-4o"), ("openai", "gpt-4o-mini"), ("anthropic", "claude-sonnet-4-5"),
          ("google", "gemini-2.5-flash"), ("deepseek", "deepseek-chat")]  # fmt: skip


def prepare() -> None:
    subprocess.run(["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", DB], check=True)
    subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", DB], check=True)


def store(count: int) -> None:
    from ingest.services import ingest_events
    from rollups.services import roll_up_all_pending
    from tenants.services import create_api_key, create_team, create_tenant

    tenant = create_tenant("bench", "Bench")
    keys = [create_api_key(tenant, team=create_team(tenant, f"team{t}"))[0] for t in range(10)]
    rng, now, started = random.Random(7), datetime.now(UTC), time.monotonic()
    for batch in range(count // 1000):
        calls = []
        for i in range(1000):
            provider, model = MODELS[i % len(MODELS)]
            tokens = rng.randint(200, 8000)
            calls.append({
                "event_id": f"{batch}-{i}", "provider": provider, "model": model,
                "timestamp": (now - timedelta(seconds=rng.randint(60, 30 * 86400))).isoformat(),
                "input_tokens": tokens, "output_tokens": rng.randint(20, 800),
                "cache_read_tokens": tokens // 2 if i % 10 == 0 else 0,
                "feature": f"f{i % 7}", "user_id": f"u{rng.randint(1, 3000)}",
            })  # fmt: skip
        ingest_events(keys[batch % len(keys)], calls)
        if batch % 50 == 49:
            print(f"stored {(batch + 1) * 1000} events ({time.monotonic() - started:.0f}s)")
    roll_up_all_pending(tenant.pk)
    print(f"stored and rolled up {count} events in {time.monotonic() - started:.0f}s")


def timed(label: str, fn):  # type: ignore[no-untyped-def]
    started = time.monotonic()
    result = fn()
    print(f"{label}: {time.monotonic() - started:.3f}s", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=300_000)
    args = parser.parse_args()
    prepare()
    import django

    django.setup()
    from django.core.management import call_command

    from prices import services as prices
    from pricing.services import set_price_override
    from rollups import repricing
    from tenants.models import Tenant

    call_command("migrate", verbosity=0)
    store(args.events)
    tenant = Tenant.objects.get(slug="bench")
    since = (datetime.now(UTC) - timedelta(days=31)).date()
    same = timed("preview, prices unchanged", lambda: repricing.preview(tenant, since))
    print(
        f"  {same.events} events, {same.changed} would change, {len(same.rows)} month x team rows"
    )
    set_price_override(
        tenant, provider="openai", model="gpt-4o", effective_from=datetime.now(UTC) - timedelta(days=40),
        input_per_mtok=Decimal("2"), output_per_mtok=Decimal("8"),
    )  # fmt: skip
    preview = timed("preview, one model re-priced", lambda: repricing.preview(tenant, since))
    print(f"  {preview.changed} would change: {preview.before} -> {preview.after}")
    asked = timed(
        "the page asks for a preview (recorded for the worker)",
        lambda: prices.request_preview(tenant, since)[0],
    )
    computed = timed("the worker computes it", lambda: prices.run_preview(tenant.pk, asked.pk))
    assert computed.status == "done" and computed.new_total_usd == preview.after
    applied = timed(
        "apply (events written, rollups rebuilt)", lambda: repricing.apply(tenant, since)
    )
    assert applied.changed == preview.changed and applied.after == preview.after
    again = timed("apply again", lambda: repricing.apply(tenant, since))
    print(f"  second apply changed {again.changed} events")


if __name__ == "__main__":
    main()
