"""The bundled fake video providers (see ``scenarios`` for what they can play)."""

from videopoll.fake_provider.server import FakeProvider, fake_env, provider_env, start_in_thread

__all__ = ["FakeProvider", "fake_env", "provider_env", "start_in_thread"]
