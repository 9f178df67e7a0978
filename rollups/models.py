from __future__ import annotations

from typing import Any

from django.db import models

from core.counts import TokenSumField
from core.money import money_field
from core.teams import NO_TEAM
from tenants.scoping import TenantOwned

# Latency histogram bucket upper bounds in milliseconds; the last bucket is everything above.
LATENCY_BOUNDS_MS = (10, 50, 100, 250, 500, 1000, 2000, 5000, 10000, 30000, 60000)
LATENCY_FIELDS = tuple(f"lat_{i}" for i in range(len(LATENCY_BOUNDS_MS) + 1))
# Tokens-per-request histogram (input + output tokens of one call); last bucket is above.
TOKENS_BOUNDS = (100, 250, 500, 1000, 2000, 5000, 10000)
TOKENS_FIELDS = tuple(f"tok_{i}" for i in range(len(TOKENS_BOUNDS) + 1))


class Measures(models.Model):
    """What every rollup row sums. All of it is additive, so merging is plain addition."""

    requests = models.BigIntegerField(default=0)
    errors = models.BigIntegerField(default=0)
    input_tokens = TokenSumField(default=0)
    output_tokens = TokenSumField(default=0)
    cache_read_tokens = TokenSumField(default=0)
    cache_write_tokens = TokenSumField(default=0)
    cost_usd = money_field(default=0)
    cost_override = money_field(default=0)
    cost_catalog = money_field(default=0)
    cost_client = money_field(default=0)
    unpriced_requests = models.BigIntegerField(default=0)
    unpriced_tokens = TokenSumField(default=0)
    latency_sum_ms = models.FloatField(default=0)
    latency_count = models.BigIntegerField(default=0)
    # Latency histogram: lat_i counts calls in (LATENCY_BOUNDS_MS[i-1], LATENCY_BOUNDS_MS[i]].
    lat_0 = models.BigIntegerField(default=0)
    lat_1 = models.BigIntegerField(default=0)
    lat_2 = models.BigIntegerField(default=0)
    lat_3 = models.BigIntegerField(default=0)
    lat_4 = models.BigIntegerField(default=0)
    lat_5 = models.BigIntegerField(default=0)
    lat_6 = models.BigIntegerField(default=0)
    lat_7 = models.BigIntegerField(default=0)
    lat_8 = models.BigIntegerField(default=0)
    lat_9 = models.BigIntegerField(default=0)
    lat_10 = models.BigIntegerField(default=0)
    lat_11 = models.BigIntegerField(default=0)
    # Tokens-per-request histogram: tok_i counts calls in (TOKENS_BOUNDS[i-1], TOKENS_BOUNDS[i]].
    tok_0 = models.BigIntegerField(default=0)
    tok_1 = models.BigIntegerField(default=0)
    tok_2 = models.BigIntegerField(default=0)
    tok_3 = models.BigIntegerField(default=0)
    tok_4 = models.BigIntegerField(default=0)
    tok_5 = models.BigIntegerField(default=0)
    tok_6 = models.BigIntegerField(default=0)
    tok_7 = models.BigIntegerField(default=0)

    class Meta:
        abstract = True


DIMENSIONS = ("team_pk", "feature", "provider", "model", "environment", "endpoint", "status")


class Dimensions(models.Model):
    """What usage rollups are grouped by, besides time.

    `status` is the class of the call's HTTP status code (`rollups.statuses`). Rows rolled up
    before endpoint and status were kept hold "" in both ("not recorded") until
    `manage.py rollup --since` rebuilds them from the raw events still retained.
    """

    team_pk = models.BigIntegerField(default=NO_TEAM)
    feature = models.CharField(max_length=128)
    provider = models.CharField(max_length=64)
    model = models.CharField(max_length=128)
    environment = models.CharField(max_length=64)
    # Defaults in the database too: SQL that fills rollups without naming them (benchmarks,
    # an operator's own loads) writes "not recorded" rather than failing.
    endpoint = models.CharField(max_length=128, default="", db_default="")
    status = models.CharField(max_length=8, default="", db_default="")

    class Meta:
        abstract = True


class HourlyRollup(TenantOwned, Dimensions, Measures):
    hour = models.DateTimeField()

    class Meta(TenantOwned.Meta):
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "hour", *DIMENSIONS], name="hourly_rollup_unique_key"
            )
        ]
        indexes = [models.Index(fields=["tenant", "hour"], name="hourly_tenant_hour")]


FILTERED_INDEXES = (
    ("team_pk", "team"), ("feature", "feature"), ("model", "model"), ("endpoint", "endpoint"),
    ("status", "status"),
)  # fmt: skip


class DailyRollup(TenantOwned, Dimensions, Measures):
    day = models.DateField()

    class Meta(TenantOwned.Meta):
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "day", *DIMENSIONS], name="daily_rollup_unique_key"
            )
        ]
        # A page filtered by one dimension (team, feature, model or model family, endpoint,
        # status class) reads that value's rows of the period, not every row of every day.
        indexes = [
            models.Index(fields=["tenant", "day"], name="daily_tenant_day"),
            *(
                models.Index(fields=["tenant", dim, "day"], name=f"daily_{name}_day")
                for dim, name in FILTERED_INDEXES
            ),
        ]


# Slices: the same measures summed over all but one dimension, each once per environment and
# once over all environments (environment ALL_ENVIRONMENTS). An unfiltered page asking "spend
# per team per day" reads ~50 team rows a day instead of every (team, feature, provider,
# model, environment) row; ungrouped dimensions hold their blank value (team NO_TEAM, text
# ""). Views filtered by two dimensions or more still read the full rollups.
ALL_ENVIRONMENTS = ""  # never an event's environment: a blank one is stored as "production"
LINE_SLICE = "line"
SLICES: dict[str, tuple[str, ...]] = {
    "all": (),
    "team": ("team_pk",),
    "feature": ("feature",),
    "model": ("provider", "model"),
    "provider": ("provider",),
    "endpoint": ("endpoint",),
    "status": ("status",),
    # An invoice line's grouping: chargeback and invoices read a month of these per
    # (team, provider, model, feature), not every endpoint and status class of it.
    LINE_SLICE: ("team_pk", "feature", "provider", "model"),
}
# The tag slices keep the one-dimension groupings only: a tag key multiplies every row it is
# kept in, and chargeback by a tag reads one value's total, not its invoice lines.
TAG_SLICES = {name: kept for name, kept in SLICES.items() if name != LINE_SLICE}
SLICE_CHOICES = [(name, name) for name in SLICES]
# A slice's key leads with what a page fixes (grouping, environment), then its time range:
# the page's rows are one stretch of the unique index, not a scan of every slice.
SLICE_DIMENSIONS = [d for d in DIMENSIONS if d != "environment"]


class HourlySlice(TenantOwned, Dimensions, Measures):
    hour = models.DateTimeField()
    grouping = models.CharField(max_length=16, choices=SLICE_CHOICES)

    class Meta(TenantOwned.Meta):
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "grouping", "environment", "hour", *SLICE_DIMENSIONS],
                name="hourly_slice_unique_key",
            )
        ]


class DailySlice(TenantOwned, Dimensions, Measures):
    day = models.DateField()
    grouping = models.CharField(max_length=16, choices=SLICE_CHOICES)

    class Meta(TenantOwned.Meta):
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "grouping", "environment", "day", *SLICE_DIMENSIONS],
                name="daily_slice_unique_key",
            )
        ]


class ConsumerMeasures(models.Model):
    """What per-consumer rollups sum (end users and API keys), daily or over a window."""

    requests = models.BigIntegerField(default=0)
    input_tokens = TokenSumField(default=0)
    output_tokens = TokenSumField(default=0)
    cost_usd = money_field(default=0)

    class Meta:
        abstract = True


CONSUMER_MEASURES = ("requests", "input_tokens", "output_tokens", "cost_usd")


def _tenant_without_index() -> models.ForeignKey[Any, Any]:
    """The tenant key of a table whose unique key leads with the tenant anyway: a separate
    index on it would only be one more index every non-HOT update of a row writes to."""
    return models.ForeignKey(
        "tenants.Tenant", on_delete=models.CASCADE, related_name="+", db_index=False
    )


class ConsumerDailyRollup(TenantOwned, ConsumerMeasures):
    """Daily spend per end user and per API key, for top-consumer tables.

    Every merge updates today's row of each consumer it saw; none of the indexes holds a
    measure, so those updates are HOT when the row's page has room: the table is stored
    half full (fillfactor 50, migration 0010), so each page holds the next version of its
    rows instead of every update writing six index entries.
    """

    tenant = _tenant_without_index()

    class Kind(models.TextChoices):
        USER = "user", "End user"
        KEY = "key", "API key"

    day = models.DateField()
    kind = models.CharField(max_length=8, choices=Kind.choices)
    consumer = models.CharField(max_length=128)  # the user_id, or the API key's pk
    team_pk = models.BigIntegerField(default=NO_TEAM)
    environment = models.CharField(max_length=64)

    class Meta(TenantOwned.Meta):
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "day", "kind", "consumer", "team_pk", "environment"],
                name="consumer_rollup_unique_key",
            )
        ]
        indexes = [
            models.Index(fields=["tenant", "kind", "day"], name="consumer_tenant_kind_day"),
            # The previous period of the few consumers a page shows: a handful of index probes.
            models.Index(
                fields=["tenant", "kind", "consumer", "day"], name="consumer_by_consumer_day"
            ),
            # A team page's top end users: that team's rows only, not every user of the days.
            models.Index(fields=["tenant", "kind", "team_pk", "day"], name="consumer_by_team_day"),
        ]


class ConsumerWindow(TenantOwned):
    """A day range whose per-consumer totals `ConsumerWindowRollup` keeps, ready to rank.

    The closed days of each dashboard standard range (last 24 hours, 7 and 30 days, month to
    date, last month), and today: their top end users and keys are read from an index instead
    of summing some 600k per-user daily rows per page view (see `rollups.windows`). A row here
    means the window is complete: built from the daily rollups, then added to by the merges
    of events of its days (under the tenant's rollup lock, so nothing lands in one and not
    the other).
    """

    first_day = models.DateField()
    last_day = models.DateField()
    # Today's window, which every merge adds to: it keeps no per-consumer rows per
    # environment (pages read those from the day's daily rows); rebuilt when the day turns.
    live = models.BooleanField(default=False)

    class Meta(TenantOwned.Meta):
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "first_day", "last_day"], name="consumer_window_unique"
            )
        ]


class ConsumerWindowRollup(TenantOwned, ConsumerMeasures):
    """Spend per end user or API key over one `ConsumerWindow`, all teams together.

    `environment` "" sums every environment; `consumer` "" is the total of all consumers
    (see `rollups.windows`).
    """

    tenant = _tenant_without_index()

    first_day = models.DateField()
    last_day = models.DateField()
    kind = models.CharField(max_length=8, choices=ConsumerDailyRollup.Kind.choices)
    consumer = models.CharField(max_length=128)
    environment = models.CharField(max_length=64)

    class Meta(TenantOwned.Meta):
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "first_day", "last_day", "kind", "consumer", "environment"],
                name="consumer_window_rollup_unique",
            )
        ]
        indexes = [
            # A page's top consumers: the first rows of this index, no aggregation.
            models.Index(
                "tenant",
                "first_day",
                "last_day",
                "kind",
                "environment",
                models.F("cost_usd").desc(),
                name="consumer_window_top",
            )
        ]


class IngestCount(TenantOwned):
    """Per day (UTC, by arrival): events accepted, recognised as duplicates, and rejected."""

    day = models.DateField()
    accepted = models.BigIntegerField(default=0)
    duplicates = models.BigIntegerField(default=0)
    rejected = models.BigIntegerField(default=0)

    class Meta(TenantOwned.Meta):
        constraints = [
            models.UniqueConstraint(fields=["tenant", "day"], name="ingest_count_unique_day")
        ]


class LifetimeRollup(TenantOwned, Dimensions, Measures):
    """All-time sums per team, feature, provider, model and environment: what /metrics reads,
    so a scrape costs one row per label set however many days of history there are."""

    class Meta(TenantOwned.Meta):
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", *DIMENSIONS], name="lifetime_rollup_unique_key"
            )
        ]


# Every rollup table of a tenant, for whatever must empty them all (the demo's reset, tests).
ROLLUP_MODELS: tuple[type[TenantOwned], ...] = (
    HourlyRollup,
    DailyRollup,
    HourlySlice,
    DailySlice,
    LifetimeRollup,
    ConsumerDailyRollup,
    ConsumerWindow,
    ConsumerWindowRollup,
)


# --- Tag dimensions -----------------------------------------------------------------------
# A tenant admin picks up to MAX_TAG_DIMENSIONS of its events' tag keys (`customer_tier`,
# `prompt_version`); the merge rolls usage up by each chosen key's value as well, into the tag
# rollups below. Per key and UTC day only the first TAG_VALUES_PER_DAY distinct values keep
# their own rows; later ones are summed under OTHER_TAG_VALUE. Events without the key count
# under NO_TAG_VALUE, so each key's rows add up to the tenant's whole usage.
MAX_TAG_DIMENSIONS = 5
TAG_KEY_LENGTH = 128  # as ingest accepts (ingest.schema.TAG_KEY_LENGTH)
TAG_VALUE_LENGTH = 256
OTHER_TAG_VALUE = "(other)"
NO_TAG_VALUE = ""  # shown and filtered as "(none)"
NO_TAG_LABEL = "(none)"


class TagDimension(TenantOwned):
    """One tag key a tenant rolls usage up by."""

    key = models.CharField(max_length=TAG_KEY_LENGTH)
    position = models.PositiveSmallIntegerField(default=0)
    # The oldest day whose events the key's rollups hold: the retained raw events' first day
    # when the key was chosen (older events were deleted, so pages say where history starts).
    history_from = models.DateField(null=True, blank=True)
    chosen_at = models.DateTimeField()

    class Meta(TenantOwned.Meta):
        constraints = [
            models.UniqueConstraint(fields=["tenant", "key"], name="tag_dimension_unique_key")
        ]


class TagValue(TenantOwned):
    """A tag value admitted to its own rows for one key and day (first come, up to the cap)."""

    tenant = _tenant_without_index()
    day = models.DateField()
    tag_key = models.CharField(max_length=TAG_KEY_LENGTH)
    tag_value = models.CharField(max_length=TAG_VALUE_LENGTH)

    class Meta(TenantOwned.Meta):
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "tag_key", "day", "tag_value"], name="tag_value_unique"
            )
        ]


TAG_KEYS = ("tag_key", "tag_value")


class Tagged(models.Model):
    """One chosen tag key and one of its values (or "(other)", or "" for none)."""

    tag_key = models.CharField(max_length=TAG_KEY_LENGTH)
    tag_value = models.CharField(max_length=TAG_VALUE_LENGTH)

    class Meta:
        abstract = True


class TagHourlyRollup(TenantOwned, Tagged, Dimensions, Measures):
    tenant = _tenant_without_index()
    hour = models.DateTimeField()

    class Meta(TenantOwned.Meta):
        # Leads with the key, then time: "values of a key over a range" is one index range;
        # the second index makes "one value over a range" one too.
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "tag_key", "hour", "tag_value", *DIMENSIONS],
                name="tag_hourly_unique_key",
            )
        ]
        indexes = [
            models.Index(fields=["tenant", "tag_key", "tag_value", "hour"], name="tag_hourly_value")
        ]


class TagDailyRollup(TenantOwned, Tagged, Dimensions, Measures):
    tenant = _tenant_without_index()
    day = models.DateField()

    class Meta(TenantOwned.Meta):
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "tag_key", "day", "tag_value", *DIMENSIONS],
                name="tag_daily_unique_key",
            )
        ]
        indexes = [
            models.Index(fields=["tenant", "tag_key", "tag_value", "day"], name="tag_daily_value")
        ]


# Tag slices, as `HourlySlice`/`DailySlice` are to the full rollups: a key's values per
# grouping and environment (ALL_ENVIRONMENTS included), so a page's "spend per customer tier"
# or "per tier and team" reads one stretch of an index, not every dimension's rows.
class TagHourlySlice(TenantOwned, Tagged, Dimensions, Measures):
    tenant = _tenant_without_index()
    hour = models.DateTimeField()
    grouping = models.CharField(max_length=16, choices=SLICE_CHOICES)

    class Meta(TenantOwned.Meta):
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "tag_key", "grouping", "environment", "hour", "tag_value",
                        *SLICE_DIMENSIONS],
                name="tag_hourly_slice_unique_key",
            )
        ]  # fmt: skip
        indexes = [
            models.Index(
                fields=["tenant", "tag_key", "grouping", "environment", "tag_value", "hour"],
                name="tag_hourly_slice_value",
            )
        ]


class TagDailySlice(TenantOwned, Tagged, Dimensions, Measures):
    tenant = _tenant_without_index()
    day = models.DateField()
    grouping = models.CharField(max_length=16, choices=SLICE_CHOICES)

    class Meta(TenantOwned.Meta):
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "tag_key", "grouping", "environment", "day", "tag_value",
                        *SLICE_DIMENSIONS],
                name="tag_daily_slice_unique_key",
            )
        ]  # fmt: skip
        indexes = [
            models.Index(
                fields=["tenant", "tag_key", "grouping", "environment", "tag_value", "day"],
                name="tag_daily_slice_value",
            ),
            # A team's or a feature's page lists each key's values from that dimension's
            # slice: these read its rows only, not every team's or feature's (at 10M events,
            # /features/<name>/ 230 to 63 ms). `grouping` is the condition, not a column:
            # PostgreSQL drops a qual the condition implies from the index scan, so as the
            # third column it left the scan bounded by tenant and key alone, and the planner
            # preferred the unique key.
            *(
                models.Index(
                    fields=["tenant", "tag_key", "environment", dim, "day"],
                    name=f"tag_daily_slice_{name}",
                    condition=models.Q(grouping=name),
                )
                for name, dim in (("team", "team_pk"), ("feature", "feature"))
            ),
        ]


TAG_ROLLUP_MODELS: tuple[type[TenantOwned], ...] = (
    TagHourlyRollup, TagDailyRollup, TagHourlySlice, TagDailySlice, TagValue
)  # fmt: skip
