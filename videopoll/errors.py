"""One exception tree, organised by what the caller should do next.

    VideopollError
    ├── TransientError            poll again later (network, 5xx, unparseable body)
    │   ├── RateLimitedError      poll again after ``retry_after`` seconds
    │   ├── TaskNotFoundError     the provider does not know the task (yet, or any more)
    │   └── SubmitOutcomeUnknownError  submit answer lost: the task may exist (never resend)
    ├── PermanentError            fail the job now with ``code``
    ├── CallbackRejected          a push callback we will not act on (answer ``status``)
    └── DeliveryError             a delivery stage failed; Celery retries it
        └── NotifyError           one notification channel failed (``retry_after`` if it said)

Every exception passes its arguments to ``super().__init__`` so it survives pickling
through Celery's result backend and retry machinery.
"""

from __future__ import annotations


class VideopollError(Exception):
    """Base of every error this package raises on purpose."""


class TransientError(VideopollError):
    """The provider could not answer usefully now; the same call may work later."""

    def __init__(self, reason: str, sample: str = "") -> None:
        super().__init__(reason, sample)
        self.reason = reason
        self.sample = sample


class RateLimitedError(TransientError):
    """The provider asked us to slow down."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.args = (reason, retry_after)
        self.retry_after = retry_after


class TaskNotFoundError(TransientError):
    """The status endpoint does not know the task: brand new (grace), or expired (fail)."""


class PermanentError(VideopollError):
    """Retrying the same request cannot succeed; the job fails with ``code``."""

    def __init__(self, code: str, provider_message: str = "") -> None:
        super().__init__(code, provider_message)
        self.code = code
        self.provider_message = provider_message


class CallbackRejected(VideopollError):
    """A provider push callback that is forged, stale, or names nothing we can look up."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(status, reason)
        self.status = status
        self.reason = reason


class DeliveryError(VideopollError):
    """A delivery stage (download, store, notify) failed.

    ``code`` names the taxonomy code a permanent failure ends the job with; ``None`` means
    ``delivery_failed`` (our own storage or notifier). A provider output that is gone (404/410)
    is ``output_missing``: the provider's fault, not ours.
    """

    def __init__(self, reason: str, permanent: bool = False, code: str | None = None) -> None:
        super().__init__(reason, permanent, code)
        self.reason = reason
        self.permanent = permanent
        self.code = code


class SubmitOutcomeUnknownError(TransientError):
    """A submit whose answer was lost (read timeout, 5xx, 408, garbled body, no task id).

    The provider may have accepted — and billed — the task, so resending blindly could pay
    twice (invariant 9). Every other submit fault proves the request was not accepted.
    """


class NotifyError(DeliveryError):
    """One notification channel (Telegram, a webhook, Slack…) refused or failed.

    ``permanent``: this channel will not take this message (blocked bot, 4xx); it is recorded
    and the others go on. Otherwise the stage retries, after ``retry_after`` when given.
    """

    def __init__(self, reason: str, permanent: bool = False,
                 retry_after: float | None = None) -> None:
        super().__init__(reason, permanent)
        self.args = (reason, permanent, retry_after)
        self.retry_after = retry_after
