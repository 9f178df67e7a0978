"""The OpenAPI schema at /api/schema/ says what the API does: who may call it, what to send,
every status code each endpoint answers with its body, and 405 for any other method."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from django.test import Client

from tests import worker
from tests.conftest import World
from tests.server import web_server

READS = {"/api/v1/usage": "get", "/api/v1/budgets/status": "get"}
WRITES = {
    "/api/v1/events": "post",
    "/api/v1/metrics/llm-costs": "post",
    "/v1/traces": "post",
    "/v1/metrics": "post",
}
STATUSES = {
    "/api/v1/usage": {"200", "400", "401", "403", "429", "503"},
    "/api/v1/budgets/status": {"200", "401", "403", "429", "503"},
    "/api/v1/events": {"202", "400", "401", "403", "413", "429", "503"},
    "/api/v1/metrics/llm-costs": {"200", "400", "401", "403", "413", "429", "503"},
    "/v1/traces": {"200", "400", "401", "403", "413", "415", "429", "503"},
    "/v1/metrics": {"200", "400", "401", "403", "413", "415", "429", "503"},
}


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    response = Client().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return response.json()


def _operation(schema: dict[str, Any], path: str) -> dict[str, Any]:
    return schema["paths"][path][{**READS, **WRITES}[path]]


def test_it_declares_the_api_key_and_the_session_cookie(schema: dict[str, Any]) -> None:
    schemes = schema["components"]["securitySchemes"]
    assert schemes["apiKey"]["type"] == "http" and schemes["apiKey"]["scheme"] == "bearer"
    assert "ingest" in schemes["apiKey"]["description"]
    assert "read" in schemes["apiKey"]["description"]
    assert schemes["cookieAuth"] == {"type": "apiKey", "in": "cookie", "name": "sessionid"}
    for path in READS:
        assert _operation(schema, path)["security"] == [{"apiKey": []}, {"cookieAuth": []}]
    for path in WRITES:
        assert _operation(schema, path)["security"] == [{"apiKey": []}]


def test_it_declares_the_request_bodies(schema: dict[str, Any]) -> None:
    events = _operation(schema, "/api/v1/events")["requestBody"]["content"]["application/json"]
    single, batch = events["schema"]["anyOf"]
    assert set(single["required"]) == {"provider", "model", "input_tokens", "output_tokens"}
    assert batch["properties"]["events"]["maxItems"] == 1000
    assert batch["properties"]["events"]["items"] == single
    tracker = _operation(schema, "/api/v1/metrics/llm-costs")["requestBody"]["content"]
    assert {"trace_id", "tokens", "costs", "metadata"} <= set(
        tracker["application/json"]["schema"]["properties"]
    )
    traces = _operation(schema, "/v1/traces")["requestBody"]["content"]
    assert set(traces) == {"application/x-protobuf", "application/json"}
    assert "resourceSpans" in traces["application/json"]["schema"]["properties"]


@pytest.mark.parametrize("path", sorted(STATUSES))
def test_it_documents_every_status_code_with_its_body(schema: dict[str, Any], path: str) -> None:
    responses = _operation(schema, path)["responses"]
    assert set(responses) == STATUSES[path]
    for status, response in responses.items():
        assert response["content"], (path, status)
        assert response["description"], (path, status)
    for status in ("429", "503"):
        assert responses[status]["headers"]["Retry-After"]["required"] is True
    assert responses["401"]["headers"]["WWW-Authenticate"]["required"] is True


def test_it_lists_the_rejected_events_of_a_400(schema: dict[str, Any]) -> None:
    bad = _operation(schema, "/api/v1/events")["responses"]["400"]["content"]["application/json"]
    result, error = bad["schema"]["anyOf"]
    assert result["properties"]["rejected"]["items"]["required"] == ["index", "errors"]
    assert error["required"] == ["detail"]


def test_it_prints_decimals_in_the_schema_without_an_exponent(schema: dict[str, Any]) -> None:
    usage = _operation(schema, "/api/v1/usage")["responses"]["200"]["content"]["application/json"]
    cost = usage["schema"]["properties"]["rows"]["items"]["properties"]["cost_usd"]
    assert cost["pattern"] == r"^-?[0-9]+(\.[0-9]+)?$"


@pytest.mark.django_db(transaction=True)
def test_it_answers_405_with_allow_for_a_method_an_endpoint_does_not_serve(world: World) -> None:
    # TRACE /v1/traces was a 403 for a read key: DRF authenticated before it looked at the
    # method. The ingest URLs are served by the fast path before Django for POST only.
    keys = {"none": None, "read": world.read.token, "ingest": world.ingest.token}
    with web_server({"DATABASE_URL": worker.test_database_url()}, workers=1) as base:
        answers = {
            (method, path, who): httpx.request(
                method,
                f"{base}{path}",
                headers={"Authorization": f"Bearer {token}"} if token else {},
                timeout=30,
            )
            for method, path in [
                ("TRACE", "/v1/traces"),
                ("GET", "/v1/traces"),
                ("GET", "/v1/metrics"),
                ("PUT", "/api/v1/events"),
                ("GET", "/api/v1/events"),
                ("DELETE", "/api/v1/metrics/llm-costs"),
                ("POST", "/api/v1/usage"),
                ("PATCH", "/api/v1/budgets/status"),
            ]
            for who, token in keys.items()
        }
    for (method, path, who), response in answers.items():
        assert response.status_code == 405, (method, path, who, response.status_code)
        expected = "GET" if path in READS else "POST"
        assert expected in response.headers["Allow"], (method, path, who)
