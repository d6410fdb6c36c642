"""Admin pages: staff users, API keys, webhooks, definitions, imports."""
