"""Fault tests: the real services (PostgreSQL, Redis, SMTP, worker processes) failing."""
