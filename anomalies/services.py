"""Anomaly writes: detect over the hourly rollups, open each anomaly once, clear, notify."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone

from alerts.models import AlertChannel
from alerts.services import notify
from anomalies.detection import (
    BASELINE_WEEKS,
    HOUR,
    WEEK,
    FeatureSeries,
    Finding,
    Stats,
    Thresholds,
    find,
)
from anomalies.models import ACTIVE, Anomaly, DetectionSettings, Kind, Status
from audit.models import Action
from audit.services import Actor, record
from rollups.models import HourlyRollup
from tenants.models import Tenant

SUMS = ("requests", "cost_usd", "input_tokens", "output_tokens", "cache_read_tokens")


def detection_settings(tenant: Tenant) -> DetectionSettings:
    found, _ = DetectionSettings.objects.for_tenant(tenant).get_or_create(
        defaults={"tenant": tenant}
    )
    return found


def thresholds(s: DetectionSettings) -> Thresholds:
    return Thresholds(
        s.volume_warning, s.volume_critical, s.cost_warning, s.cost_critical, s.cache_warning,
        s.cache_critical, s.drift_critical_ratio, float(s.min_z), s.min_requests,
    )  # fmt: skip


def load_series(tenant: Tenant, start: datetime, end: datetime) -> dict[str, FeatureSeries]:
    """Hourly stats per feature and per feature and model, in one query."""
    rows = HourlyRollup.objects.for_tenant(tenant).filter(hour__gte=start, hour__lt=end)
    grouped = rows.values("feature", "hour", "provider", "model").annotate(
        **{f"s_{k}": Sum(k) for k in SUMS}
    )
    series: dict[str, FeatureSeries] = defaultdict(FeatureSeries)
    for r in grouped.order_by():
        stats = Stats(
            r["s_requests"] or 0,
            r["s_cost_usd"] or Decimal(0),
            r["s_input_tokens"] or 0,
            r["s_output_tokens"] or 0,
            r["s_cache_read_tokens"] or 0,
        )
        feature = series[r["feature"] or "(none)"]
        _add(feature.hours.setdefault(r["hour"], Stats()), stats)
        _add(
            feature.models.setdefault(f"{r['provider']}/{r['model']}", {}).setdefault(
                r["hour"], Stats()
            ),
            stats,
        )
    return dict(series)


def _add(into: Stats, more: Stats) -> None:
    into.requests += more.requests
    into.cost += more.cost
    into.input_tokens += more.input_tokens
    into.output_tokens += more.output_tokens
    into.cache_read_tokens += more.cache_read_tokens


def last_complete_hour(now: datetime | None = None) -> datetime:
    now = now or timezone.now()
    return now.astimezone(UTC).replace(minute=0, second=0, microsecond=0) - HOUR


def detect(tenant: Tenant, first: datetime, last: datetime) -> list[Anomaly]:
    """Check every hour from `first` to `last` (inclusive) in order; returns new anomalies."""
    settings = detection_settings(tenant)
    limits = thresholds(settings)
    series = load_series(tenant, first - WEEK * BASELINE_WEEKS - HOUR, last + HOUR)
    opened: list[Anomaly] = []
    hour = first
    while hour <= last:
        findings = find(series, hour, limits)
        opened += [a for f in findings if (a := _record(tenant, settings, hour, f))]
        _clear(tenant, hour, findings, series)
        hour += HOUR
    return opened


def detect_latest(tenant_id: int) -> int:
    tenant = Tenant.objects.get(pk=tenant_id)
    hour = last_complete_hour()
    return len(detect(tenant, hour, hour))


def _record(
    tenant: Tenant, settings: DetectionSettings, hour: datetime, f: Finding
) -> Anomaly | None:
    """Open the anomaly once; an open one is updated, and escalates to critical only once."""
    active = (
        Anomaly.objects.for_tenant(tenant)
        .filter(kind=f.kind, feature=f.feature, model=f.model, status__in=ACTIVE)
        .first()
    )
    if active is not None:
        escalate = f.severity == "critical" and active.severity != "critical"
        active.last_hour, active.observed, active.z_score = (
            max(active.last_hour, hour),
            f.observed,
            f.z_score,
        )
        if escalate:
            active.severity, active.summary = f.severity, f.summary
        active.save()
        if escalate:
            _notify(tenant, settings, active)
        return None
    try:
        with transaction.atomic():
            anomaly = Anomaly.objects.create(
                tenant=tenant, kind=f.kind, severity=f.severity, feature=f.feature, model=f.model,
                opened_at=timezone.now(), first_hour=hour, last_hour=hour, observed=f.observed,
                baseline=f.baseline, z_score=f.z_score, summary=f.summary,
            )  # fmt: skip
    except IntegrityError:
        return None  # another detector opened it a moment ago
    _notify(tenant, settings, anomaly)
    return anomaly


def _clear(
    tenant: Tenant, hour: datetime, findings: list[Finding], series: dict[str, FeatureSeries]
) -> None:
    """Resolve what is no longer seen: a metric back to normal, a drifted model unused for a day."""
    still = {(f.kind, f.feature, f.model) for f in findings}
    active = Anomaly.objects.for_tenant(tenant).filter(status__in=ACTIVE, last_hour__lt=hour)
    for anomaly in active:
        if (anomaly.kind, anomaly.feature, anomaly.model) in still:
            continue
        if anomaly.kind == Kind.MODEL_DRIFT and _used_recently(series, anomaly, hour):
            continue
        anomaly.status, anomaly.resolved_at, anomaly.resolved_by = (
            Status.RESOLVED,
            timezone.now(),
            "cleared",
        )
        anomaly.save(update_fields=["status", "resolved_at", "resolved_by"])


def _used_recently(series: dict[str, FeatureSeries], anomaly: Anomaly, hour: datetime) -> bool:
    hours = series.get(anomaly.feature, FeatureSeries()).models.get(anomaly.model, {})
    return any(hour - timedelta(hours=24) < h <= hour for h in hours)


def _channels(settings: DetectionSettings, severity: str) -> list[AlertChannel]:
    chosen = settings.critical_channels if severity == "critical" else settings.warning_channels
    channels = list(chosen.all())
    if not channels and severity == "critical" and not settings.warning_channels.exists():
        # Nothing configured yet: critical anomalies still reach every channel of the tenant.
        channels = list(AlertChannel.objects.for_tenant(settings.tenant_id).filter(enabled=True))
    return channels


def _notify(tenant: Tenant, settings: DetectionSettings, anomaly: Anomaly) -> None:
    notify(
        tenant,
        _channels(settings, anomaly.severity),
        source="anomaly",
        title=f"{anomaly.get_kind_display()} ({anomaly.severity}): {anomaly.summary}",
        message=f"{anomaly.summary}. Opened for the hour starting {anomaly.first_hour:%Y-%m-%d %H:%M} UTC.",
        severity=anomaly.severity,
        details={"kind": anomaly.kind, "feature": anomaly.feature, "model": anomaly.model or "-"},
    )
    anomaly.notified_severity = anomaly.severity
    anomaly.save(update_fields=["notified_severity"])


@transaction.atomic
def acknowledge(anomaly: Anomaly, username: str, *, actor: Actor = None) -> None:
    if anomaly.status == Status.OPEN:
        anomaly.status, anomaly.acknowledged_by = Status.ACKNOWLEDGED, username
        anomaly.save(update_fields=["status", "acknowledged_by"])
        details = {"kind": anomaly.kind, "summary": anomaly.summary}
        target = f"#{anomaly.pk} {anomaly.feature}"
        record(anomaly.tenant, actor or username, Action.ANOMALY_ACKNOWLEDGED, target, details)


def resolve(anomaly: Anomaly, username: str) -> None:
    if anomaly.status != Status.RESOLVED:
        anomaly.status, anomaly.resolved_at, anomaly.resolved_by = (
            Status.RESOLVED,
            timezone.now(),
            username,
        )
        anomaly.save(update_fields=["status", "resolved_at", "resolved_by"])
