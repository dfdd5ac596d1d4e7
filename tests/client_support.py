"""What the client tests share: short timeouts, and a server that answers every GET with fixed bytes."""

from __future__ import annotations

import http.server
import threading

FAST = dict(timeout=5.0, retry_wait=0.01)


class FixedBody(http.server.ThreadingHTTPServer):
    """Answers every GET with the same bytes (a hostile or broken server)."""

    def __init__(self, body: bytes) -> None:
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("ETag", '"fixed"')
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()
        self.base = f"http://127.0.0.1:{self.server_address[1]}/api/v1/"

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
