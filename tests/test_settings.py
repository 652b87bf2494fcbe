from __future__ import annotations

import pytest
from pydantic import ValidationError

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
    s = Settings()
    assert "kie-very-secret" not in repr(s)
    assert s.secret("kie_api_key") == "kie-very-secret"
