"""Admin pages: staff users, API keys, webhooks, survey definitions, imports."""
