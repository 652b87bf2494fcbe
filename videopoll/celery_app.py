"""The Celery application. Configuration is loaded lazily from ``celeryconfig``.

Run a worker with ``celery -A videopoll.celery_app worker``; beat with ``… beat``.
"""

from __future__ import annotations

from celery import Celery, signals

from videopoll.logs import configure_logging

app = Celery("videopoll", include=["videopoll.tasks.poll", "videopoll.tasks.deliver"])
app.config_from_object("celeryconfig")


@signals.worker_init.connect
def _serve_metrics(**_: object) -> None:
    """``WORKER_METRICS_PORT``: this worker's Prometheus metrics over HTTP (README "Metrics")."""
    from videopoll.metrics import serve_worker_metrics
    from videopoll.settings import load_settings

    s = load_settings()
    serve_worker_metrics(s.worker_metrics_port, s.worker_metrics_host, s.prometheus_multiproc_dir)


@signals.setup_logging.connect
def _json_logs(loglevel: int | str | None = None, **_: object) -> None:
    """Use our JSON log lines in workers and beat, at the level ``--loglevel`` asked for."""
    configure_logging(loglevel or "INFO")
