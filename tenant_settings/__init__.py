"""The tenant's settings page: API keys and alert channels (prices: `prices`) (admins only)."""
