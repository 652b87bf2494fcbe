"""Google Veo: the Gemini API (an API key) and Vertex AI (an OAuth token), two families.

Both start a long-running operation and report it until ``done`` (providers.md §5); what they
share — the operation shape, google.rpc.Status errors, RAI filtering, inline images — lives in
``operations``. They differ in auth, in how an operation is polled (a GET on its name; a POST
to ``:fetchPredictOperation``) and in where the video is (a Files API link; a ``gs://`` URI).
"""

from videopoll.providers.google.gemini import GeminiProvider
from videopoll.providers.google.vertex import VertexProvider

__all__ = ["GeminiProvider", "VertexProvider"]
