"""What every KIE.ai family adapter shares: one account, one envelope, one callback check."""

from __future__ import annotations

from typing import ClassVar

from videopoll.models import PollResult, ProviderResponse
from videopoll.normalizers import guarded
from videopoll.providers.base import CallbackOutcome, CallbackRequest, Provider, ProviderConfig
from videopoll.providers.kie.common import BASE_URL, KIE_ACCOUNT, KieConfig, verify_callback
from videopoll.providers.kie.shapes import judge
from videopoll.ratelimit import Limit


class KieProvider(Provider):
    """Base of the KIE families: they read KIE_* and draw on one account's budgets
    (providers.md §1.9: 20 new generations per 10 s, 10 status queries per second)."""

    config_name = "kie"
    config_class: ClassVar[type[ProviderConfig]] = KieConfig
    default_base_url = BASE_URL
    rate_account = KIE_ACCOUNT
    status_limit = Limit(rate=10.0, burst=10)
    submit_limit = Limit(rate=2.0, burst=20)
    pushes_callbacks = True
    signs_callbacks = True

    def callback(self, req: CallbackRequest) -> CallbackOutcome:
        key = self.config.secret("webhook_hmac_key") or self.config.secret("webhook_secret")
        return verify_callback(req, key, self.callback_max_age)

    def normalize(self, resp: ProviderResponse) -> PollResult:
        return guarded(resp, judge)
