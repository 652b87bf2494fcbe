"""The Flask app factory: thin views over the job store and the Celery publisher."""

from __future__ import annotations

from flask import Flask

from videopoll.api import errors, views
from videopoll.logs import configure_logging
from videopoll.runtime import Runtime, build_runtime
from videopoll.settings import Settings, load_settings


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> Flask:
    settings = settings or load_settings()
    configure_logging()
    app = Flask("videopoll")
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.extensions["videopoll"] = runtime or build_runtime(settings)
    errors.register(app)
    app.register_blueprint(views.bp)
    return app
