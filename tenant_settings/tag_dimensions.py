"""The settings page's tag dimensions: which tag keys usage is rolled up by."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.db import transaction
from django.http import HttpRequest

from rollups import tags
from rollups.models import MAX_TAG_DIMENSIONS
from rollups.tasks import reroll_tag_dimensions
from tenants.context import TenantContext
from tenants.models import Tenant


def tags_context(tenant: Tenant) -> dict[str, Any]:
    dimensions = tags.chosen(tenant)
    return {
        "tag_dimensions": dimensions,
        "tag_keys_text": ", ".join(d.key for d in dimensions),
        "max_tag_dimensions": MAX_TAG_DIMENSIONS,
    }


def set_tags(request: HttpRequest, ctx: TenantContext) -> dict[str, Any] | None:
    text = request.POST.get("tag_keys", "")
    keys = [k.strip() for k in text.split(",") if k.strip()]
    try:
        added = tags.set_tag_dimensions(ctx.tenant, keys, actor=request.user)
    except tags.BadTagKeys as exc:
        return {"tag_keys_text": text, "tag_error": str(exc)}
    if added:
        # The worker re-rolls the history once the choice is committed (and merges use it).
        tenant_id = ctx.tenant.pk
        transaction.on_commit(lambda: reroll_tag_dimensions.delay(tenant_id, added))
        messages.success(
            request, f"Re-rolling {', '.join(added)} from the stored events in the background."
        )
    else:
        messages.success(request, "Tag dimensions saved.")
    return None
