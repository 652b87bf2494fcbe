"""Celery configuration chosen for this workload: many short, I/O-bound, fenced poll tasks.

Read by ``videopoll.celery_app`` with ``config_from_object``. URLs and intervals come from the
typed settings (the one place that reads the environment).
"""

from __future__ import annotations

from kombu.entity import Queue

from videopoll.poll_messages import POLL_QUEUE
from videopoll.settings import load_settings

_settings = load_settings()

broker_url = _settings.effective_broker_url
# No result backend: tasks pass ids and re-read the job record; nobody calls .get().
result_backend = None
task_ignore_result = True

# Redis re-delivers a message that is not acked within the visibility timeout. Countdown
# messages stay unacked while the worker holds them, so the timeout must exceed the longest
# countdown we ever schedule, or every waiting poll would be delivered twice (fencing would
# drop the copy, but it is waste). The sweeper, not redelivery, recovers lost messages.
_longest_countdown = max(
    [_settings.poll_interval_seconds, _settings.delayed_interval_seconds, 3600.0,
     *_settings.poll_schedule]
)
_visibility_timeout = int(_longest_countdown * 2)
# Set in all three places Celery reads it (celery/celery#7651: the transport options of the
# broker and of the result backend, and the top-level setting). Only for a Redis broker: kombu
# hands py-amqp's Connection every transport option as a keyword, and RabbitMQ has no
# visibility timeout. Its counterpart there is the server's consumer_timeout (30 min by
# default): a countdown held unacked longer than that gets the worker's channel closed and
# every message it holds redelivered (fenced, so nothing runs twice, but all of them churn).
# Our longest countdown is a provider's Retry-After (capped at 3600 s), so production
# RabbitMQ needs consumer_timeout >= 2 x that (README "Choosing a broker").
_redis_broker = broker_url.split("://", 1)[0] in ("redis", "rediss", "redis+socket", "sentinel")
broker_transport_options: dict[str, object] = (
    {"visibility_timeout": _visibility_timeout} if _redis_broker else {})
result_backend_transport_options = dict(broker_transport_options)
if _redis_broker:
    visibility_timeout = _visibility_timeout
broker_connection_retry_on_startup = True

task_serializer = "json"
accept_content = ["json"]
timezone = "UTC"
enable_utc = True

# Every task is idempotent (polls are fenced on their token, delivery stages are marked), so
# late acks plus reject-on-worker-lost are safe: a task interrupted by a crash runs again.
task_acks_late = True
task_reject_on_worker_lost = True
# Polls are short network waits; a few in hand keeps the pool busy without hoarding.
worker_prefetch_multiplier = 4
# Soft shutdown: on SIGTERM the worker finishes running tasks for up to this long and, with
# the on-idle switch, re-queues the countdown messages it holds instead of sitting on them.
worker_soft_shutdown_timeout = 10.0
worker_enable_soft_shutdown_on_idle = True
# Off: on a broker connection loss Celery would "cancel" every running late-ack task, and the
# threads pool cannot terminate a job (TaskPool.terminate_job raises NotImplementedError), so
# the worker died with "Unrecoverable error" whenever the broker blinked mid-task
# (test_faults_brokers). A task left running finishes; its ack fails with the old channel and
# the message comes back, which the fences and stage markers make harmless.
worker_cancel_long_running_tasks_on_connection_loss = False
# Off as well: after a reconnect with tasks still running, Celery lowers the prefetch count and
# restores it from each finished task's ack callback, which on the threads pool runs in a
# pool thread; py-amqp is not thread-safe and that basic_qos waits for a reply the consumer
# thread reads, so the worker stopped consuming until its next disconnect
# (test_faults_brokers, RabbitMQ). A few extra messages prefetched after a reconnect are fenced.
worker_enable_prefetch_count_reduction = False
task_time_limit = 15 * 60
task_soft_time_limit = 14 * 60

# The sweep has a queue of its own: on the poll queue it waited behind any backlog and expired
# there, exactly when recovery mattered. Every worker consumes both (a worker started without
# -Q takes all of task_queues); kombu's Redis transport round-robins BRPOP over its queues, so
# a sweep waits at most for the prefetched window, never for the backlog.
task_default_queue = POLL_QUEUE
task_queues = (Queue(POLL_QUEUE), Queue("videopoll-sweep"))  # type: ignore[no-untyped-call]
task_routes = {
    "videopoll.poll_job": {"queue": "videopoll"},
    "videopoll.sweep": {"queue": "videopoll-sweep"},
}

# Beat keeps its schedule in memory (no file: a fresh clone has no var/) and fires only while
# it holds a lease in Redis, so a second beat is a hot standby, not a second sweeper.
beat_scheduler = "videopoll.beat:LeaderScheduler"
beat_max_loop_interval = min(_settings.sweep_interval_seconds, 5.0)
beat_schedule = {
    "sweep": {
        "task": "videopoll.sweep",
        "schedule": _settings.sweep_interval_seconds,
        "options": {"expires": _settings.sweep_interval_seconds * 2},
    }
}
worker_hijack_root_logger = False
