"""A fake Telegram Bot API server (records calls, plays scripted failures)."""

from videopoll.fake_telegram.server import FakeTelegram, start_in_thread

__all__ = ["FakeTelegram", "start_in_thread"]
