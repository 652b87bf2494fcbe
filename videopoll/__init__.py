"""videopoll: accept video-generation jobs over HTTP, poll providers in Celery, deliver results."""

__version__ = "0.1.0"
