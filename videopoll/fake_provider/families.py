"""Every provider family the fake server plays, one line each (like ``providers.PROVIDERS``)."""

from __future__ import annotations

from videopoll.fake_provider.core import FakeFamily
from videopoll.fake_provider.kie import KieFake

FAKES: tuple[type[FakeFamily], ...] = (
    KieFake,
)
