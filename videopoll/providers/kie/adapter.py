"""What every KIE.ai family adapter shares: one account, one envelope, one callback check."""

from __future__ import annotations

from typing import ClassVar

from videopoll.models import PollResult, ProviderResponse
from videopoll.normalizers import Normalizer, guarded
from videopoll.providers.base import CallbackOutcome, CallbackRequest, Provider, ProviderConfig
from videopoll.providers.kie.common import BASE_URL, KIE_ACCOUNT, KieConfig, verify_callback
from videopoll.providers.kie.shapes import CHAIN, judge
from videopoll.ratelimit import Limit


class KieProvider(Provider):
    """Base of the KIE families: they read KIE_* and draw on one account's budgets
    (providers.md §1.9: 20 new generations per 10 s, 10 status queries per second).

    A token bucket lets ``burst + rate x T`` through in any window of T seconds, so each
    budget is split between the two: at most 10 + 1 x 10 = 20 submits in any 10 s, and
    5 + 5 x 1 = 10 queries in any second (a burst of 1 would keep more of the rate, but then
    polls woken together by callbacks wait in line: push p50 2.5 s against 0.5 s in the
    bench). Over-limit submits get 429 and are not queued."""

    config_name = "kie"
    config_class: ClassVar[type[ProviderConfig]] = KieConfig
    default_base_url = BASE_URL
    rate_account = KIE_ACCOUNT
    status_limit = Limit(rate=5.0, burst=5)
    submit_limit = Limit(rate=1.0, burst=10)
    pushes_callbacks = True
    signs_callbacks = True
    chain: ClassVar[tuple[Normalizer, ...]] = CHAIN  # the family's own parser first

    def callback(self, req: CallbackRequest) -> CallbackOutcome:
        return verify_callback(req, self._callback_key(), self.callback_max_age)

    def proves_callbacks(self) -> bool:
        # signing is an account setting (a webhookHmacKey, providers.md §1.5): without our
        # copy of the key the URL token is the proof
        return self._callback_key() is not None

    def _callback_key(self) -> str | None:
        return self.config.secret("webhook_hmac_key") or self.config.secret("webhook_secret")

    def normalize(self, resp: ProviderResponse) -> PollResult:
        return guarded(resp, lambda r: judge(r, self.chain))
