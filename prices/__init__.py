"""`/prices/`: every price Costboard applies and where it comes from, the tenant's own prices,
and re-pricing stored events with a preview first (recorded, run in the worker).

It sits above `rollups` (calls and spend per model, the re-price engine) so that `pricing`
stays the small resolver that ingest prices events with.
"""
