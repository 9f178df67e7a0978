"""The demo tenant: weeks of realistic usage, budgets, anomalies and invoices (`seed_demo`)."""
