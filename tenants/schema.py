"""The API key as an OpenAPI security scheme (drf-spectacular), registered by `TenantsConfig`."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyScheme(OpenApiAuthenticationExtension):
    """`Authorization: Bearer cb_<prefix>_<secret>`: `tenants.auth.ApiKeyAuthentication`."""

    target_class = "tenants.auth.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "cb_<prefix>_<secret>",
            "description": (
                "An API key from `manage.py create_api_key` or the settings page. Its scope "
                "decides what it may do: `ingest` keys send usage (POST /api/v1/events, "
                "/api/v1/metrics/llm-costs, /v1/traces), `read` keys read it (GET /api/v1/usage, "
                "/api/v1/budgets/status). A key of the other scope gets 403."
            ),
        }
