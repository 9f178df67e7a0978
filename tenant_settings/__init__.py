"""The tenant's settings page: API keys, price overrides and alert channels (admins only)."""
