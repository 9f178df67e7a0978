from __future__ import annotations

from django.db import models

from core.money import money_field
from tenants.scoping import TenantOwned


class UsageEvent(TenantOwned):
    """One LLM call as a service reported it, priced at ingest.

    Rows are written by `ingest.services.store_events`: by COPY for a batch of 10 or more,
    otherwise in one INSERT shared with the process's concurrent requests of the same tenant
    (group commit). `batch_id` ties them to the `PendingBatch` that the rollup worker consumes.
    """

    event_id = models.CharField(max_length=128)
    batch_id = models.BigIntegerField()
    timestamp = models.DateTimeField()
    # The UTC hour of `timestamp`, stored so rollups group without database date functions.
    hour = models.DateTimeField()
    received_at = models.DateTimeField()
    # The hottest table: no database foreign keys (each costs a lookup per inserted row) and
    # no single-column indexes; Django still applies on_delete when a tenant, team or key goes.
    tenant = models.ForeignKey(
        "tenants.Tenant",
        on_delete=models.CASCADE,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )
    team = models.ForeignKey(
        "tenants.Team",
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )
    api_key = models.ForeignKey(
        "tenants.ApiKey",
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )
    provider = models.CharField(max_length=64)
    model = models.CharField(max_length=128)
    input_tokens = models.BigIntegerField()
    output_tokens = models.BigIntegerField()
    cache_read_tokens = models.BigIntegerField(default=0)
    cache_write_tokens = models.BigIntegerField(default=0)
    feature = models.CharField(max_length=128, default="")
    endpoint = models.CharField(max_length=128, default="")
    user_id = models.CharField(max_length=128, default="")
    environment = models.CharField(max_length=64, default="production")
    latency_ms = models.FloatField(null=True)
    status_code = models.IntegerField(default=200)
    client_cost_usd = money_field(null=True)
    cost_usd = money_field()
    cost_source = models.CharField(max_length=16)
    tags = models.JSONField(default=dict)

    # The table is range-partitioned by `timestamp`, a partition per UTC month
    # (`ingest.partitions`; migration 0004): its primary key is (id, timestamp). A
    # (tenant, event_id) is stored once: `ingest_eventkey`'s primary key, written with the event.
    class Meta(TenantOwned.Meta):
        indexes = [
            models.Index(fields=["tenant", "timestamp"], name="event_tenant_time"),
            models.Index(fields=["batch_id"], name="event_batch"),
        ]


class PendingBatch(TenantOwned):
    """An ingest request whose events are stored but not yet in the rollups.

    Written in the same transaction as its events and deleted in the same transaction that
    adds them to the rollups, so every event is rolled up exactly once, however late it
    commits or however often a worker dies.
    """

    created_at = models.DateTimeField()
    offered = models.PositiveIntegerField(default=0)  # valid events sent, duplicates included
    rejected = models.PositiveIntegerField(default=0)
    # Merges of this batch the database refused (a sum its columns cannot hold, ...): after
    # `rollups.services.MAX_ATTEMPTS` it is quarantined, left out of every merge and of the
    # rollup lag until an operator retries or drops it (`manage.py rollup_quarantine`).
    # Database defaults: ingest inserts batch rows with SQL naming only the columns above.
    failures = models.PositiveSmallIntegerField(default=0, db_default=0)
    last_error = models.TextField(default="", db_default="", blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    quarantined_at = models.DateTimeField(null=True, blank=True)

    # The primary key is the batch id stamped on the batch's events.
