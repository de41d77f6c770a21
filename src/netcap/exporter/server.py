"""The HTTP endpoint: `/metrics`, `/` (a landing page) and `/-/healthy`, GET and HEAD.

Rendering: a body is rendered at most once per `cache_seconds` (per format and
encoding) and served from that cache in between, so the render cost is bounded whatever
the scrape rate; a render re-formats only the series that changed (`Exposition`); and a
scrape arriving while a render runs gets the previous body instead of waiting.

Connections: a fixed pool of `workers` threads serves them; accepted connections wait
for a worker in a queue of `backlog`, and past that are closed at once (counted in
`refused`). Each read or write on a connection times out after `idle_timeout`, and a
connection still open `deadline` seconds after it was accepted is shut down, so idle or
trickling clients cannot hold the workers. TLS handshakes run in the workers, under the
same limits; plain HTTP sent to a TLS port gets a 400 and is closed.

Addresses: `HOST:PORT`, `[IPv6]:PORT`, or `:PORT` for every interface (IPv6 and IPv4,
as Go's `net.Listen` does).

Start-up: the address is bound and the workers wait from the start (a scrape during the
run is accepted at once), but what answers requests (wsgiref with http.server, in
wsgi.py; client_python; gzip) is loaded by the worker that takes the first connection,
and ssl, yaml and bcrypt only with a web config: a `net export -exit` that nobody
scrapes loads none of them. The first scrape pays for those imports instead.
"""

from __future__ import annotations

import contextlib
import os
import queue
import selectors
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import ssl

    from ..metrics.collector import Exposition
    from .webconfig import BasicAuth, WebConfig

__all__ = ["Exporter", "parse_address"]

# Held while a serving thread imports, and taken by os.fork (the decoding workers):
# a process forked while another thread is importing a module inherits that module's
# import lock held by a thread it does not have, and would hang if it imported it too.
_IMPORTING = threading.Lock()
os.register_at_fork(before=_IMPORTING.acquire, after_in_parent=_IMPORTING.release,
                    after_in_child=_IMPORTING.release)

_LANDING = b"""<html><head><title>netcap</title></head><body><h1>netcap</h1>
<p><a href="/metrics">metrics</a></p></body></html>
"""
_HTTP_TO_TLS = (b"HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close"
                b"\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")


def parse_address(text: str) -> tuple[str, int]:
    """`HOST:PORT`, `[IPv6]:PORT` or `:PORT` -> (host, port); host "" is every interface."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f"bad -address {text!r}: want HOST:PORT, [IPv6]:PORT or :PORT")
    if host.startswith("[") and host.endswith("]"):
        import ipaddress

        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"bad -address {text!r}: {host!r} is not an IPv6 address") from None
    elif ":" in host:
        raise ValueError(f"bad -address {text!r}: write an IPv6 address in brackets,"
                         " e.g. [::1]:7777")
    return host, int(port)


def _listen_address(host: str, port: int) -> tuple[socket.AddressFamily, tuple[Any, ...]]:
    if host == "":  # every interface: IPv6 with IPv4 mapped in, where there is IPv6
        return (socket.AF_INET6, ("::", port)) if socket.has_ipv6 else (
            socket.AF_INET, ("0.0.0.0", port))
    for family in (socket.AF_INET, socket.AF_INET6):
        # An address as written (the usual case) needs no lookup; getaddrinfo would
        # load the IDNA codec (encodings.idna, stringprep, unicodedata) for the name.
        try:
            socket.inet_pton(family, host)
        except OSError:
            continue
        return family, (host, port) if family == socket.AF_INET else (host, port, 0, 0)
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, _, _, _, sockaddr = infos[0]
    return family, sockaddr


class _Server(socketserver.TCPServer):
    """A TCP server with a bounded pool of workers instead of a thread per connection,
    TLS done in the workers, and each connection answered by wsgiref's request handler
    (wsgi.py), which is loaded when the first connection comes (see the module doc)."""

    request_queue_size = 64  # the listen backlog
    allow_reuse_address = True  # as http.server's HTTPServer (and so wsgiref's) sets

    def __init__(self, host: str, port: int, tls: ssl.SSLContext | None, workers: int,
                 backlog: int, idle_timeout: float, deadline: float) -> None:
        family, sockaddr = _listen_address(host, port)
        self.address_family = family
        self.tls = tls
        self.idle_timeout = idle_timeout
        self.deadline = deadline
        self.refused = 0  # connections closed because every worker was busy
        self._queue: queue.Queue[tuple[socket.socket, Any] | None] = queue.Queue(backlog)
        self._open: dict[socket.socket, float] = {}  # connection -> when accepted
        self._open_lock = threading.Lock()
        self._workers: list[threading.Thread] = []  # server_close() runs if binding fails
        self._app: Callable[..., Iterable[bytes]] | None = None
        self._handler: Any = None  # wsgi.Handler, once a connection needed it
        self.base_environ: dict[str, str] = {}  # set with the handler (wsgi.base_environ)
        self._handler_lock = threading.Lock()
        # serve()'s wakeup: stop() writes a byte, so the loop ends at once, not at its
        # next poll (socketserver's serve_forever kept every -exit run waiting up to a
        # poll interval for that).
        self._wake_r, self._wake_w = os.pipe()  # closed by server_close (also if binding fails)
        self._stopping = False
        self._stopped = threading.Event()
        # The handler class given here is never used: _serve makes the handlers.
        super().__init__(sockaddr, socketserver.BaseRequestHandler)
        self._workers = [threading.Thread(target=self._work, daemon=True,
                                          name=f"netcap-http-{i}") for i in range(workers)]
        for t in self._workers:
            t.start()

    def server_bind(self) -> None:
        if self.address_family == socket.AF_INET6 and self.server_address[0] == "::":
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        # HTTPServer.server_bind would look the host name up (getfqdn): not needed,
        # and slow where there is no resolver.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), int(
            self.server_address[1])

    def set_app(self, app: Callable[..., Iterable[bytes]]) -> None:
        self._app = app

    def get_app(self) -> Callable[..., Iterable[bytes]] | None:
        """The WSGI application (wsgiref's handler asks the server for it)."""
        return self._app

    def _handler_class(self) -> Any:
        """wsgiref's request handler, imported by the first worker that needs it (an
        import runs once; workers arriving meanwhile wait for it here). What answering
        needs besides is imported with it, while forks wait (_IMPORTING): client_python
        (the collector's render) and gzip (a gzipped answer)."""
        with self._handler_lock:
            if self._handler is None:
                with _IMPORTING:
                    import gzip  # noqa: F401

                    import prometheus_client  # noqa: F401

                    from . import wsgi
                self.base_environ = wsgi.base_environ(self.server_name, self.server_port)
                self._handler = wsgi.Handler
            return self._handler

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open[request] = time.monotonic()
        try:
            self._queue.put_nowait((request, client_address))
        except queue.Full:
            self.refused += 1
            self._close(request)

    def serve(self) -> None:
        """Accept connections until stop(): socketserver's serve_forever, with the wakeup
        pipe beside the listening socket. Polls often enough to enforce the deadline."""
        try:
            with selectors.PollSelector() as sel:
                sel.register(self, selectors.EVENT_READ)
                sel.register(self._wake_r, selectors.EVENT_READ)
                while True:  # a stop() before this loop left its byte: no wait then
                    ready = sel.select(min(0.25, self.deadline / 4))
                    if self._stopping:
                        break
                    if any(key.fileobj is self for key, _ in ready):
                        try:
                            request, address = self.get_request()
                        except OSError:  # gone before it was accepted
                            pass
                        else:
                            self.process_request(request, address)
                    self.service_actions()
        finally:
            self._stopped.set()

    def stop(self) -> None:
        """End serve(): running, or its thread started and the loop not entered yet (the
        byte left in the pipe ends it at once). Not for a serve() never started."""
        self._stopping = True
        os.write(self._wake_w, b"\0")
        self._stopped.wait()

    def service_actions(self) -> None:
        """Called by the serving loop between polls: shut down connections past their
        deadline (a blocked read or write in a worker then returns)."""
        now = time.monotonic()
        with self._open_lock:
            late = [s for s, t in self._open.items() if now - t > self.deadline]
        for s in late:
            # The plain socket's shutdown, also for a TLS one (its own would tear down
            # the TLS state under the worker using it).
            with contextlib.suppress(OSError):
                socket.socket.shutdown(s, socket.SHUT_RDWR)

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            request, address = item
            try:
                self._serve(request, address)
            except Exception:  # noqa: BLE001 - a client's failure never ends a worker
                pass
            finally:
                self._close(request)

    def _serve(self, request: socket.socket, address: Any) -> None:
        request.settimeout(self.idle_timeout)
        conn: socket.socket = request
        if self.tls is not None:
            first = request.recv(1, socket.MSG_PEEK)
            if first != b"\x16":  # not a TLS handshake record: say so, close
                if first:
                    # Read the request first: closing with unread data would reset the
                    # connection, and the client could lose the answer.
                    request.recv(65536)
                    request.sendall(_HTTP_TO_TLS)
                return
            import ssl  # loaded already: the web config made self.tls

            try:
                conn = self.tls.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                return  # a failed handshake (e.g. no client certificate): nothing to say
            with self._open_lock:  # the deadline applies to the TLS socket now
                self._open[conn] = self._open.pop(request, time.monotonic())
        try:
            self._handler_class()(conn, address, self)
        finally:
            if conn is not request:
                self._close(conn)

    def _close(self, s: socket.socket) -> None:
        with self._open_lock:
            self._open.pop(s, None)
        self.shutdown_request(s)

    def server_close(self) -> None:
        """Close the listening socket and every connection, waiting or being served
        (a full queue or a slow client must not delay the exit), and end the workers."""
        super().server_close()
        os.close(self._wake_r)
        os.close(self._wake_w)
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                self._close(item[0])
        with self._open_lock:
            serving = list(self._open)
        for s in serving:
            with contextlib.suppress(OSError):
                socket.socket.shutdown(s, socket.SHUT_RDWR)
        for _ in self._workers:
            with contextlib.suppress(queue.Full):
                self._queue.put_nowait(None)


class Exporter:
    """The endpoint, serving in a daemon thread from `start()` until `stop()`."""

    def __init__(self, exposition: Exposition, host: str, port: int,
                 web: WebConfig | None = None, *, cache_seconds: float = 1.0,
                 workers: int = 8, backlog: int = 16, idle_timeout: float = 10.0,
                 deadline: float = 60.0) -> None:
        self.exposition = exposition
        self.cache_seconds = cache_seconds
        self.renders = 0  # bodies rendered: tests count these
        self._cache: dict[tuple[str, bool], tuple[float, bytes]] = {}
        self._render_lock = threading.Lock()
        self._headers = list(web.headers) if web is not None else []
        self.auth: BasicAuth | None = None
        if web is not None and web.users:
            from .webconfig import BasicAuth  # bcrypt: loaded only for basic auth

            self.auth = BasicAuth(web.users)
        self.tls = web is not None and web.tls is not None
        self.client_certs = web is not None and web.client_certs
        # Raises OSError (e.g. address in use) here, before anything else starts.
        tls = web.tls if web is not None else None
        try:
            self._server = _Server(host, port, tls, workers, backlog, idle_timeout, deadline)
        except OSError:
            if host != "":
                raise
            # Every interface, on a machine with IPv6 turned off: IPv4 alone.
            self._server = _Server("0.0.0.0", port, tls, workers, backlog, idle_timeout,
                                   deadline)
        self._server.set_app(self._app)
        self.port = self._server.server_port
        self.host = self._server.server_name
        self._thread = threading.Thread(target=self._server.serve, daemon=True,
                                        name="netcap-http")

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}/metrics"

    @property
    def refused(self) -> int:
        return self._server.refused

    @property
    def loopback(self) -> bool:
        """Whether only this machine can connect (a loopback address is bound)."""
        import ipaddress

        addr = ipaddress.ip_address(self.host.split("%")[0])
        mapped = getattr(addr, "ipv4_mapped", None)
        return bool((mapped or addr).is_loopback)

    def warning(self) -> str | None:
        """What to tell the user when others can reach the endpoint unprotected."""
        if self.loopback or (self.tls and (self.auth is not None or self.client_certs)):
            return None
        missing = " or ".join(x for x, on in (("TLS", self.tls), (
            "authentication", self.auth is not None or self.client_certs)) if not on)
        return (f"serving metrics on {self.url} without {missing}: anyone who can reach"
                " it can read them (see -web-config)")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.stop()
        self._server.server_close()

    def _body(self, accept: str, gzipped: bool) -> tuple[bytes, str]:
        ctype = self.exposition.content_type(accept)
        key = (ctype, gzipped)
        hit = self._cache.get(key)
        if hit is None:
            self._render_lock.acquire()
        elif time.monotonic() - hit[0] < self.cache_seconds:
            return hit[1], ctype
        elif not self._render_lock.acquire(blocking=False):
            return hit[1], ctype  # one render at a time; meanwhile, the previous body
        try:
            hit = self._cache.get(key)  # rendered while this one waited?
            if hit is None or time.monotonic() - hit[0] >= self.cache_seconds:
                body, _ = self.exposition.render(accept)
                self.renders += 1
                if gzipped:
                    import gzip  # loaded with the handler (_handler_class)

                    body = gzip.compress(body, compresslevel=1)
                hit = (time.monotonic(), body)
                self._cache[key] = hit
            return hit[1], ctype
        finally:
            self._render_lock.release()

    def _app(self, environ: dict[str, Any], start_response: Callable[..., Any]
             ) -> Iterable[bytes]:
        headers = list(self._headers)
        method = environ.get("REQUEST_METHOD", "GET")
        if self.auth is not None and not self.auth.check(environ.get("HTTP_AUTHORIZATION")):
            start_response("401 Unauthorized", [
                *headers, ("Content-Type", "text/plain"),
                ("WWW-Authenticate", 'Basic realm="netcap", charset="UTF-8"')])
            return [b"Unauthorized\n"]
        if method not in ("GET", "HEAD"):
            start_response("405 Method Not Allowed", [
                *headers, ("Content-Type", "text/plain"), ("Allow", "GET, HEAD")])
            return [b"method not allowed: use GET or HEAD\n"]
        path = environ.get("PATH_INFO", "/")
        if path == "/metrics":
            gzipped = "gzip" in environ.get("HTTP_ACCEPT_ENCODING", "")
            body, ctype = self._body(environ.get("HTTP_ACCEPT", ""), gzipped)
            headers.append(("Content-Type", ctype))
            if gzipped:
                headers.append(("Content-Encoding", "gzip"))
            status = "200 OK"
        elif path == "/-/healthy":
            headers.append(("Content-Type", "text/plain"))
            status, body = "200 OK", b"OK\n"
        elif path == "/":
            headers.append(("Content-Type", "text/html; charset=utf-8"))
            status, body = "200 OK", _LANDING
        else:
            headers.append(("Content-Type", "text/plain"))
            status, body = "404 Not Found", b"not found\n"
        headers.append(("Content-Length", str(len(body))))
        start_response(status, headers)
        return [] if method == "HEAD" else [body]
