"""The usage API's tag parameters: `group_by=tag:<key>` and `tag.<key>=<value>`."""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import ValidationError

from rollups import tag_sql
from rollups.models import NO_TAG_LABEL
from rollups.selectors import UsageQuery
from rollups.tag_selectors import TAG_FILTER_PREFIX, TAG_GROUP_PREFIX, TagQuery, stored_value
from tenants.models import Tenant


def tag_query(params: Any, q: UsageQuery, tenant: Tenant) -> TagQuery | None:
    """The tag key the query reads, or None; a 400 naming the field for a key that is not
    one of the tenant's tag dimensions, or for more than one key (each key's rows sum every
    event once, so two keys' rows cannot be combined)."""
    groups = [
        g.removeprefix(TAG_GROUP_PREFIX) for g in q.group_by if g.startswith(TAG_GROUP_PREFIX)
    ]
    filters = {
        name.removeprefix(TAG_FILTER_PREFIX): (name, params.get(name))
        for name in params
        if name.startswith(TAG_FILTER_PREFIX)
    }
    if not groups and not filters:
        return None
    chosen = tag_sql.chosen_keys(tenant.pk)
    for key in groups:
        if key not in chosen:
            raise ValidationError({"group_by": [_not_chosen(key, chosen)]})
    for key, (name, value) in filters.items():
        if key not in chosen:
            raise ValidationError({name: [_not_chosen(key, chosen)]})
        if not value or "\x00" in value:
            raise ValidationError({name: [f"give a value; {NO_TAG_LABEL} for events without it"]})
    keys = set(groups) | set(filters)
    if len(keys) > 1:
        field = "group_by" if len(groups) > 1 else next(iter(filters.values()))[0]
        raise ValidationError({field: [f"one tag key per query, not {sorted(keys)}"]})
    (key,) = keys
    value = filters[key][1] if key in filters else None
    return TagQuery(key, bool(groups), None if value is None else stored_value(value))


def _not_chosen(key: str, chosen: list[str]) -> str:
    names = ", ".join(chosen) or "none"
    return f"{key!r} is not a tag dimension of this tenant (chosen: {names})"
