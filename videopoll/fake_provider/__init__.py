"""The bundled fake video providers (see ``scenarios`` for what they can play)."""

from videopoll.fake_provider.server import FakeProvider, provider_env, start_in_thread

__all__ = ["FakeProvider", "provider_env", "start_in_thread"]
