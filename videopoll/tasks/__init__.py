"""Celery tasks: thin wrappers that load state, call one plain function, and schedule the next."""
