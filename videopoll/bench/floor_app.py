"""The submit floor: a bare Flask route answering 202, served by the same gunicorn setup.

Whatever our submit costs beyond this (validation, the Redis write, the publish) is ours.
"""

from __future__ import annotations

from flask import Flask
from flask.typing import ResponseReturnValue


def create_app() -> Flask:
    app = Flask("videopoll-bench-floor")

    @app.post("/webhook/poll-video")
    def accepted() -> ResponseReturnValue:
        return {"jobId": "job_floor", "status": "queued", "message": "Polling started"}, 202

    return app
