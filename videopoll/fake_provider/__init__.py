"""The bundled fake KIE.ai provider (see ``scenarios`` for what it can play)."""

from videopoll.fake_provider.server import FakeProvider, start_in_thread

__all__ = ["FakeProvider", "start_in_thread"]
