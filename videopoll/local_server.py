"""Running the bundled local servers (fake provider, fake Telegram) in a thread or a process."""

from __future__ import annotations

import signal
import threading
from http.server import ThreadingHTTPServer


class BackgroundServer:
    """An HTTP server served from a daemon thread (tests, the demo)."""

    def __init__(self, server: ThreadingHTTPServer, name: str) -> None:
        self.http = server
        host, port = server.server_address[:2]
        self.base_url = f"http://{host!s}:{port}"
        self.thread = threading.Thread(target=server.serve_forever, name=name, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.http.shutdown()
        self.http.server_close()
        self.thread.join(timeout=5)


def serve_until_stopped(server: ThreadingHTTPServer, banner: str) -> int:
    """Serve in the foreground until Ctrl-C or SIGTERM (a Procfile line)."""
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(banner, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
