"""`POST /v1/metrics`: OTLP metrics are accepted and ignored, so no call is counted twice."""

from __future__ import annotations

from typing import Any

from django.test import Client
from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from tests.conftest import World
from tests.otlp.helpers import JSON, PROTOBUF, status_of, stored

URL = "/v1/metrics"


def token_usage_metrics() -> ExportMetricsServiceRequest:
    """What a GenAI instrumentation records for one call, encoded by the SDK's own encoder."""
    reader = InMemoryMetricReader()
    meter = MeterProvider(metric_readers=[reader]).get_meter("opentelemetry.instrumentation.openai")
    usage = meter.create_histogram("gen_ai.client.token.usage", unit="{token}")
    common = {"gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o-mini"}
    usage.record(1500, {**common, "gen_ai.token.type": "input"})
    usage.record(450, {**common, "gen_ai.token.type": "output"})
    data = reader.get_metrics_data()
    assert data is not None
    return encode_metrics(data)


def post_metrics(
    client: Client, body: bytes | str, token: str | None, content_type: str = PROTOBUF
) -> Any:
    headers: dict[str, Any] = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    return client.post(URL, body, content_type=content_type, **headers)


def test_it_accepts_token_usage_metrics_and_counts_nothing(world: World, client: Client) -> None:
    response = post_metrics(client, token_usage_metrics().SerializeToString(), world.ingest.token)
    assert response.status_code == 200
    assert response["Content-Type"] == PROTOBUF
    answer = ExportMetricsServiceResponse()
    answer.ParseFromString(response.content)
    assert answer == ExportMetricsServiceResponse()  # full success, nothing rejected
    assert stored(world.tenant) == []


def test_it_answers_otlp_json_metrics_in_json(world: World, client: Client) -> None:
    body = json_format.MessageToJson(token_usage_metrics())
    response = post_metrics(client, body, world.ingest.token, content_type=JSON)
    assert response.status_code == 200
    assert response["Content-Type"] == JSON
    assert response.json() == {}
    assert stored(world.tenant) == []


def test_it_answers_400_naming_the_message_for_a_body_that_is_not_otlp_metrics(
    world: World,
    client: Client,
) -> None:
    garbage = post_metrics(client, b"\xff\xff\xff", world.ingest.token)
    assert garbage.status_code == 400
    assert "ExportMetricsServiceRequest" in status_of(garbage).message
    wrong_json = post_metrics(client, "[1, 2]", world.ingest.token, content_type=JSON)
    assert wrong_json.status_code == 400 and wrong_json["Content-Type"] == JSON
    assert "ExportMetricsServiceRequest" in status_of(wrong_json).message
    other_type = post_metrics(client, b"x", world.ingest.token, content_type="text/plain")
    assert other_type.status_code == 415


def test_it_answers_401_for_metrics_without_a_valid_key(world: World, client: Client) -> None:
    body = token_usage_metrics().SerializeToString()
    missing = post_metrics(client, body, None)
    unknown = post_metrics(client, body, "cb_nope_nope")
    assert missing.status_code == 401 and unknown.status_code == 401
    assert missing["WWW-Authenticate"].startswith("Bearer")
    assert missing["Content-Type"] == PROTOBUF  # an OTLP Status an exporter can read


def test_it_answers_403_for_metrics_from_a_read_key(world: World, client: Client) -> None:
    response = post_metrics(client, token_usage_metrics().SerializeToString(), world.read.token)
    assert response.status_code == 403
    assert "ingest" in status_of(response).message


def test_it_stores_nothing_for_either_tenant_from_another_tenant_s_metrics(
    world: World,
    client: Client,
) -> None:
    body = token_usage_metrics().SerializeToString()
    assert post_metrics(client, body, world.other_ingest.token).status_code == 200
    assert stored(world.tenant) == [] and stored(world.other_tenant) == []
