"""KIE.ai: one aggregator account, three API families with shapes of their own.

``veo`` (``/api/v1/veo/*``), ``market`` (``/api/v1/jobs/*``: Sora 2, Seedance, Kling, Hailuo)
and ``runway`` (``/api/v1/runway/*``) share the envelope, the code table and the callback
signature (``common``) and one chain of answer shapes (``shapes``), including the three
legacy shapes of the original n8n workflow.
"""

from videopoll.providers.kie.market import KieMarketProvider
from videopoll.providers.kie.runway import KieRunwayProvider
from videopoll.providers.kie.veo import KieVeoProvider

__all__ = ["KieMarketProvider", "KieRunwayProvider", "KieVeoProvider"]
