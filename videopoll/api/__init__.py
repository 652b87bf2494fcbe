"""The Flask app factory: thin views over the job store and the Celery publisher."""

from __future__ import annotations

import time

from flask import Flask

from videopoll.api import errors, openapi, view, views
from videopoll.logs import configure_logging
from videopoll.runtime import Runtime, build_runtime
from videopoll.settings import Settings, load_settings


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> Flask:
    settings = settings or load_settings()
    configure_logging()
    app = Flask("videopoll", static_folder=None)  # no static files: no /static/ route either
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.extensions["videopoll_started_at"] = time.time()  # /healthz: how long without a sweep
    app.extensions["videopoll"] = runtime or build_runtime(
        settings, redis_timeout=settings.api_redis_timeout_seconds
    )
    _bound_publishing(settings.api_redis_timeout_seconds)
    errors.register(app)
    app.register_blueprint(views.bp)
    app.register_blueprint(view.bp)  # /jobs/<id>/view: its own auth (signed links)
    app.register_blueprint(openapi.bp)  # /openapi.json and /docs
    return app


def _bound_publishing(timeout: float) -> None:
    """Give this process's broker connections socket timeouts.

    Kombu's Redis transport waits forever on a frozen broker by default; in the API a publish
    is only a hint (the sweeper enqueues every stored job), so it must never hold a caller.
    The settings are merged into this process's copy of the Celery config only: workers keep
    their own.
    """
    from videopoll.celery_app import app as celery_app

    options = dict(celery_app.conf.broker_transport_options or {})
    options["socket_timeout"] = timeout
    options["socket_connect_timeout"] = timeout
    celery_app.conf.broker_transport_options = options
    celery_app.conf.broker_connection_timeout = timeout
