"""A static file server on 127.0.0.1 for download tests: serves a folder, can fail, truncate and resume."""

from __future__ import annotations

import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


class StaticServer:
    """Serve ``root`` over HTTP on a free port; records requests.

    ``fail_with``: HTTP statuses answered (one per request, in order) before files are served again.
    ``truncate_to``: send only this many body bytes while announcing the full Content-Length, then close.
    Range requests (``bytes=N-``) are answered with 206 when ``support_range`` is true.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.requests: list[tuple[str, str | None]] = []
        self.fail_with: list[int] = []
        self.truncate_to: int | None = None
        self.support_range = True
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                range_header = self.headers.get("Range")
                server.requests.append((self.path, range_header))
                self.close_connection = True
                if server.fail_with:
                    self.send_error(server.fail_with.pop(0))
                    return
                file = server.root / urllib.parse.unquote(self.path.lstrip("/"))
                if not file.is_file():
                    self.send_error(404)
                    return
                data = file.read_bytes()
                offset = 0
                if range_header and server.support_range:
                    offset = int(range_header.removeprefix("bytes=").rstrip("-"))
                    if offset >= len(data):
                        self.send_error(416)
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {offset}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[offset:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body if server.truncate_to is None else body[: server.truncate_to])

            def log_message(self, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Shut the server down; later requests to its URL are refused (offline)."""
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()
