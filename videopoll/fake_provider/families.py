"""Every provider family the fake server plays, one line each (like ``providers.PROVIDERS``)."""

from __future__ import annotations

from videopoll.fake_provider.core import FakeFamily
from videopoll.fake_provider.gemini import GeminiFake
from videopoll.fake_provider.kie import KieFake
from videopoll.fake_provider.openai import OpenAIFake
from videopoll.fake_provider.replicate import ReplicateFake
from videopoll.fake_provider.vertex import VertexFake

FAKES: tuple[type[FakeFamily], ...] = (
    KieFake,
    GeminiFake,
    VertexFake,
    OpenAIFake,
    ReplicateFake,
)
