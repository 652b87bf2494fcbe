"""The one place that turns a status or error code into words a user may see.

Users never see raw provider errors: every code of the taxonomy maps to one message here.
"""

from __future__ import annotations

from videopoll.models import ErrorCode, JobStatus

STATUS_MESSAGES: dict[JobStatus, str] = {
    JobStatus.QUEUED: "Your video is waiting to start.",
    JobStatus.VALIDATING: "Your request is being checked.",
    JobStatus.RUNNING: "Your video is being generated.",
    JobStatus.DELAYED: "This is taking longer than usual. We are still checking.",
    JobStatus.DELIVERING: "Your video is ready and is being delivered.",
    JobStatus.SUCCEEDED: "Your video is ready.",
    JobStatus.FAILED: "Something went wrong while generating your video.",
    JobStatus.CANCELED: "This job was canceled.",
}

ERROR_MESSAGES: dict[ErrorCode, str] = {
    ErrorCode.VALIDATION_FAILED: "The request was not valid. Check the prompt and options.",
    ErrorCode.MODERATION_REJECTED: (
        "This request could not be processed. Try changing the prompt or assets."
    ),
    ErrorCode.PROVIDER_TIMEOUT: "The provider did not return a result in time.",
    ErrorCode.PROVIDER_RATE_LIMITED: "The provider is busy right now. Please try again later.",
    ErrorCode.ASSET_FETCH_FAILED: "We could not read the input asset. Please upload it again.",
    ErrorCode.OUTPUT_MISSING: "The provider finished but returned no video.",
    ErrorCode.UNKNOWN_PROVIDER_ERROR: "The provider could not generate this video.",
    ErrorCode.DELIVERY_FAILED: "Your video was generated but could not be delivered.",
    ErrorCode.CANCELED: "This job was canceled.",
    ErrorCode.INSUFFICIENT_CREDITS: "The video service is out of credits. Please try later.",
    ErrorCode.PROVIDER_AUTH_FAILED: "The video service is misconfigured. Please contact support.",
    ErrorCode.TASK_NOT_FOUND: (
        "The provider no longer knows this task. It may have expired; please start a new one."
    ),
    ErrorCode.SUBMIT_UNCONFIRMED: (
        "We could not confirm that the provider accepted your request, so we did not resend"
        " it (that could charge you twice). Please try again."
    ),
}


def user_message(status: JobStatus, error_code: ErrorCode | None = None) -> str:
    """The text shown to the end user for a job in ``status``."""
    if status is JobStatus.FAILED and error_code is not None:
        return ERROR_MESSAGES[error_code]
    return STATUS_MESSAGES[status]
