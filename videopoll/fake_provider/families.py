"""Every provider family the fake server plays, one line each (like ``providers.PROVIDERS``)."""

from __future__ import annotations

from videopoll.fake_provider.ark import ArkFake
from videopoll.fake_provider.core import FakeFamily
from videopoll.fake_provider.fal import FalFake
from videopoll.fake_provider.gemini import GeminiFake
from videopoll.fake_provider.kie import KieFake
from videopoll.fake_provider.kling import KlingFake
from videopoll.fake_provider.luma import LumaFake
from videopoll.fake_provider.minimax import MiniMaxFake
from videopoll.fake_provider.openai import OpenAIFake
from videopoll.fake_provider.replicate import ReplicateFake
from videopoll.fake_provider.runway import RunwayFake
from videopoll.fake_provider.vertex import VertexFake

FAKES: tuple[type[FakeFamily], ...] = (
    KieFake,
    GeminiFake,
    VertexFake,
    OpenAIFake,
    ReplicateFake,
    LumaFake,
    ArkFake,
    MiniMaxFake,
    KlingFake,
    FalFake,
    RunwayFake,
)
