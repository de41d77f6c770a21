"""How one connection is answered: wsgiref's request handler (the HTTP request parsed,
the WSGI application called, the answer written), without its access log.

A module of its own so that it loads when the first connection arrives, not when
`net export` starts: `wsgiref.simple_server` brings `http.server` with `email`, `html`,
`mimetypes` and `http.client` (about 20 ms of imports), which a run that nobody
scrapes (`-exit` on a file) never needs. The pool that accepts connections and the
limits on them are in server.py.
"""

from __future__ import annotations

import io
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler

__all__ = ["Handler", "base_environ"]


class _Discard(io.TextIOBase):
    def write(self, s: str) -> int:
        return len(s)


class Handler(WSGIRequestHandler):
    """No access log, and no tracebacks on stderr when a client goes away mid-answer
    (wsgiref prints those to the handler's error stream)."""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    def get_stderr(self) -> Any:
        return _Discard()


def base_environ(server_name: str, server_port: int) -> dict[str, str]:
    """The environ every request starts from: what wsgiref's WSGIServer.setup_environ
    sets (the handler reads it as `server.base_environ`)."""
    return {"SERVER_NAME": server_name, "GATEWAY_INTERFACE": "CGI/1.1",
            "SERVER_PORT": str(server_port), "REMOTE_HOST": "", "CONTENT_LENGTH": "",
            "SCRIPT_NAME": ""}
