from __future__ import annotations

import pytest
from pydantic import ValidationError

from videopoll.providers.base import ProviderConfig
from videopoll.providers.kie.common import KieConfig
from videopoll.settings import Settings


def test_schedule_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POLL_SCHEDULE", "5, 10,15,30,60")
    s = Settings()
    assert [s.countdown_for(n) for n in (1, 2, 5, 9)] == [5, 10, 60, 60]


def test_interval_without_schedule_and_fractions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POLL_INTERVAL_SECONDS", "0.25")
    assert Settings().countdown_for(3) == 0.25


@pytest.mark.parametrize(("name", "value"), [("POLL_SCHEDULE", "5,-1"),
                                              ("MAX_ATTEMPTS", "0"),
                                              ("POLL_INTERVAL_SECONDS", "abc")])
def test_bad_values_are_rejected(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises((ValidationError, ValueError)):
        Settings()


def test_secrets_do_not_print(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KIE_API_KEY", "kie-very-secret")
    monkeypatch.setenv("API_TOKEN", "api-very-secret")
    s = Settings()
    config = s.provider_config("kie", KieConfig)
    assert "kie-very-secret" not in repr(config) and "api-very-secret" not in repr(s)
    assert config.secret("api_key") == "kie-very-secret"


def test_each_family_reads_its_own_prefix_and_overrides_win(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KIE_BASE_URL", "https://kie.example")
    monkeypatch.setenv("KIE_WEBHOOK_HMAC_KEY", "hmac")
    monkeypatch.setenv("ACME_BASE_URL", "https://acme.example")
    s = Settings()
    kie = s.provider_config("kie", KieConfig)
    assert (kie.base_url, kie.secret("webhook_hmac_key")) == ("https://kie.example", "hmac")
    assert s.provider_config("acme", ProviderConfig).base_url == "https://acme.example"
    pinned = Settings(providers={"kie": {"base_url": "http://127.0.0.1:9"}})
    assert pinned.provider_config("kie", KieConfig).base_url == "http://127.0.0.1:9"
    assert Settings().provider_config("none", KieConfig).base_url == "https://api.kie.ai"
