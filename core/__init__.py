"""Costboard's shared base layer: what several apps use, importing no feature app.

Apps import `core`; `core` imports only Django, DRF and third-party libraries. The project
package (`costboard/`) wires concrete pieces in through settings (the tenant middleware,
DRF's authentication classes), so nothing here needs to know them.
"""
