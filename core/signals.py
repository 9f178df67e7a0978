"""What the apps announce; who reacts is wired in one place (`pipeline`)."""

from __future__ import annotations

from django.dispatch import Signal

# Sent after a transaction that stored a tenant's events (or only a count of rejected ones)
# has committed: the events are durable. Arguments: `tenant_id`.
events_stored = Signal(use_caching=True)
