"""The HTTP endpoint: `/metrics`, `/` (a landing page) and `/-/healthy`.

The body of `/metrics` is rendered from the registry at most once per `cache_seconds`
(per format and encoding) and served from that cache in between, so many concurrent
scrapes cost one render and never stall decoding. Text format 0.0.4 by default,
OpenMetrics when the client asks for it, gzip when accepted (client_python's encoders).
Runs in a daemon thread; `stop()` shuts it down.
"""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import ThreadingWSGIServer, choose_encoder

__all__ = ["Exporter"]

_LANDING = b"""<html><head><title>netcap</title></head><body><h1>netcap</h1>
<p><a href="/metrics">metrics</a></p></body></html>
"""


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass


class Exporter:
    def __init__(self, registry: CollectorRegistry, host: str, port: int,
                 cache_seconds: float = 1.0) -> None:
        self.registry = registry
        self.cache_seconds = cache_seconds
        self._cache: dict[tuple[str, bool], tuple[float, bytes, str]] = {}
        self._lock = threading.Lock()
        # Raises OSError (e.g. address in use) here, before anything else starts.
        self._server = make_server(host, port, self._app, ThreadingWSGIServer,
                                   handler_class=_QuietHandler)
        self.port = int(self._server.server_port)
        # A short poll interval: stop() waits for the serving loop to notice (100
        # wakeups a second cost nothing measurable; 50 ms cost every -exit run 25 ms).
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.01,),
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _render(self, accept: str, gzipped: bool) -> tuple[bytes, str]:
        encoder, content_type = choose_encoder(accept)
        key = (content_type, gzipped)
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None and now - hit[0] < self.cache_seconds:
                return hit[1], hit[2]
            body = encoder(self.registry)
            if gzipped:
                body = gzip.compress(body, compresslevel=1)
            self._cache[key] = (now, body, content_type)
            return body, content_type

    def _app(self, environ: dict[str, Any], start_response: Callable[..., Any]
             ) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        if path == "/metrics":
            gzipped = "gzip" in environ.get("HTTP_ACCEPT_ENCODING", "")
            body, ctype = self._render(environ.get("HTTP_ACCEPT", ""), gzipped)
            headers = [("Content-Type", ctype), ("Content-Length", str(len(body)))]
            if gzipped:
                headers.append(("Content-Encoding", "gzip"))
            start_response("200 OK", headers)
            return [body]
        if path == "/-/healthy":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"OK\n"]
        if path == "/":
            start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
            return [_LANDING]
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found\n"]
