"""fal.ai's queue API (providers.md §7): one adapter for every fal video endpoint.

Task ids. A submit answers ``request_id`` and the URLs to use (status, result, cancel); those
name only the model's owner/app, never the endpoint's subpath (a request to
``fal-ai/kling-video/v2.1/standard/text-to-video`` is polled under ``fal-ai/kling-video``).
``fetch`` gets only our task id, so the task id is that URL stem,
``<owner>/<app>/requests/<request_id>``, read from the returned ``status_url`` (model id plus
request id when it is absent) and turned back into exactly those URLs. A webhook names only
``request_id``, so the callback URL handed to fal carries ``app=<owner>/<app>`` and
``callback`` rebuilds the same id from the two.

Answers. Status is IN_QUEUE / IN_PROGRESS (HTTP 202) or COMPLETED (200). COMPLETED is also how
a failed request ends: the verdict is in the result, which ``fetch`` reads in the same poll and
merges in as ``result`` (``shapes`` reads both). Webhooks are ED25519-signed (``webhook``).
"""

from videopoll.providers.fal.adapter import FalConfig, FalProvider

__all__ = ["FalConfig", "FalProvider"]
