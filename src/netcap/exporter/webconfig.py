"""`-web-config FILE`: TLS and basic authentication for the endpoint, in the Prometheus
exporter-toolkit format (the file node_exporter reads), so the same file and the same
Prometheus scrape settings work here.

    tls_server_config:
      cert_file: server.crt        # paths relative to this file
      key_file: server.key
      client_ca_file: ca.crt       # with client_auth_type: mutual TLS
      client_auth_type: RequireAndVerifyClientCert
      min_version: TLS12           # the default, as in exporter-toolkit
    http_server_config:
      headers: {Strict-Transport-Security: max-age=31536000}
    basic_auth_users:
      prometheus: $2b$12$...       # bcrypt hashes (htpasswd -nBC 12 "" | tr -d ':\\n')

As in exporter-toolkit, unknown keys are errors, and so is a header other than the five
it allows. What this server cannot honour is refused rather than ignored: cipher and
curve lists, `client_allowed_sans`, inline `cert`/`key`, and the client-auth types that
take a certificate without verifying it (Python's ssl verifies every certificate it
asks for). Everything is checked when the file is loaded, before any work starts.

Passwords: bcrypt is slow on purpose (~0.2 s at cost 12), so checking it on every scrape
would let anyone with the address burn a core. Each distinct (user, password) is checked
once and its result kept, keyed by a SHA-256 of both, in a bounded table (a scraper
sends the same credentials each time); at most one bcrypt check runs at a time; an
unknown user is checked against a decoy hash of the highest configured cost, so the
answer takes as long as for a known user (exporter-toolkit does all three).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import ssl
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import bcrypt
import yaml

__all__ = ["BasicAuth", "WebConfig", "WebConfigError", "load_web_config"]


class WebConfigError(ValueError):
    """A web-config file that cannot be used (the message names the key and the file)."""


# exporter-toolkit's list: only these response headers, some with fixed values.
_HEADERS: dict[str, tuple[str, ...]] = {
    "Strict-Transport-Security": (), "X-Content-Type-Options": ("nosniff",),
    "X-Frame-Options": ("deny", "sameorigin"), "X-XSS-Protection": (),
    "Content-Security-Policy": (),
}
_VERSIONS = {"TLS10": ssl.TLSVersion.TLSv1, "TLS11": ssl.TLSVersion.TLSv1_1,
             "TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3}
# client_auth_type -> Python's verify mode (None: not possible with Python's ssl).
_CLIENT_AUTH: dict[str, ssl.VerifyMode | None] = {
    "": ssl.CERT_NONE, "NoClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
    "RequestClientCert": None, "RequireAnyClientCert": None, "RequireClientCert": None,
}
_TLS_KEYS = {"cert_file", "key_file", "client_ca_file", "client_auth_type", "min_version",
             "max_version", "prefer_server_cipher_suites"}
_UNSUPPORTED_TLS_KEYS = {"cert", "key", "client_ca", "cipher_suites", "curve_preferences",
                         "client_allowed_sans"}
_HTTP_KEYS = {"http2", "headers"}
_TOP_KEYS = {"tls_server_config", "http_server_config", "basic_auth_users"}
_UNSUPPORTED_TOP_KEYS = {"rate_limit"}


@dataclass(frozen=True)
class WebConfig:
    tls: ssl.SSLContext | None  # None: plain HTTP
    client_certs: bool  # TLS that requires a verified client certificate
    users: dict[str, bytes]  # basic auth: user -> bcrypt hash (empty: no basic auth)
    headers: tuple[tuple[str, str], ...]  # added to every response


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise WebConfigError(f"{where}: want a mapping")
    return value


def _check_keys(d: dict[str, Any], allowed: set[str], unsupported: set[str],
                where: str) -> None:
    for key in d:
        if key in unsupported:
            raise WebConfigError(f"{where}.{key} is not supported by netcap")
        if key not in allowed:
            raise WebConfigError(f"{where}: unknown key {key!r}")


def _text(d: dict[str, Any], key: str, where: str) -> str:
    v = d.get(key, "")
    if v is None:
        return ""
    if not isinstance(v, str):
        raise WebConfigError(f"{where}.{key}: want a string")
    return v


def _tls(d: dict[str, Any], base: str) -> tuple[ssl.SSLContext | None, bool]:
    where = "tls_server_config"
    _check_keys(d, _TLS_KEYS, _UNSUPPORTED_TLS_KEYS, where)

    def path(key: str) -> str:
        p = _text(d, key, where)
        return os.path.join(base, p) if p else ""

    cert, key, ca = path("cert_file"), path("key_file"), path("client_ca_file")
    auth = _text(d, "client_auth_type", where)
    if not (cert or key or ca or auth):
        return None, False  # exporter-toolkit: no TLS settings means plain HTTP
    if not cert:
        raise WebConfigError(f"{where}: missing cert_file")
    if not key:
        raise WebConfigError(f"{where}: missing key_file")
    if auth not in _CLIENT_AUTH:
        raise WebConfigError(f"{where}.client_auth_type: unknown value {auth!r}")
    mode = _CLIENT_AUTH[auth]
    if mode is None:
        raise WebConfigError(f"{where}.client_auth_type {auth} is not supported by netcap"
                             " (use VerifyClientCertIfGiven or RequireAndVerifyClientCert)")
    if ca and mode is ssl.CERT_NONE:
        raise WebConfigError(f"{where}: client_ca_file given without a client_auth_type")
    if mode is not ssl.CERT_NONE and not ca:
        raise WebConfigError(f"{where}: client_auth_type {auth} needs client_ca_file")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    for bound, attr, default in (("min_version", "minimum_version", "TLS12"),
                                 ("max_version", "maximum_version", "TLS13")):
        name = _text(d, bound, where) or default
        if name not in _VERSIONS:
            raise WebConfigError(f"{where}.{bound}: unknown TLS version {name!r}"
                                 f" (want one of {', '.join(_VERSIONS)})")
        try:
            setattr(ctx, attr, _VERSIONS[name])
        except (ValueError, ssl.SSLError) as e:
            raise WebConfigError(f"{where}.{bound} {name}: {e}") from None
    try:
        ctx.load_cert_chain(cert, key)
    except FileNotFoundError as e:
        raise WebConfigError(f"{where}: {e.filename}: {e.strerror}") from None
    except (OSError, ssl.SSLError) as e:
        raise WebConfigError(f"{where}: cannot load cert_file {cert} with key_file {key}:"
                             f" {getattr(e, 'reason', None) or e}") from None
    if ca:
        try:
            ctx.load_verify_locations(cafile=ca)
        except FileNotFoundError as e:
            raise WebConfigError(f"{where}: {e.filename}: {e.strerror}") from None
        except (OSError, ssl.SSLError) as e:
            raise WebConfigError(f"{where}: cannot load client_ca_file {ca}:"
                                 f" {getattr(e, 'reason', None) or e}") from None
    ctx.verify_mode = mode
    return ctx, mode is ssl.CERT_REQUIRED


def _users(value: Any) -> dict[str, bytes]:
    users: dict[str, bytes] = {}
    for user, hashed in _mapping(value, "basic_auth_users").items():
        if not isinstance(hashed, str) or not _is_bcrypt(hashed):
            raise WebConfigError(f"basic_auth_users.{user}: not a bcrypt hash"
                                 " (want $2a$, $2b$ or $2y$, 60 characters)")
        users[user] = hashed.encode()
    return users


def _is_bcrypt(h: str) -> bool:
    return (len(h) == 60 and h[:4] in ("$2a$", "$2b$", "$2y$") and h[4:6].isdigit()
            and 4 <= int(h[4:6]) <= 31 and h[6] == "$")


def _headers(value: Any) -> tuple[tuple[str, str], ...]:
    out = []
    for name, v in _mapping(value, "http_server_config.headers").items():
        if name not in _HEADERS:
            raise WebConfigError(f"http_server_config.headers: header {name!r} can not be"
                                 f" configured (allowed: {', '.join(_HEADERS)})")
        if not isinstance(v, str) or "\n" in v or "\r" in v:
            raise WebConfigError(f"http_server_config.headers.{name}: want one line of text")
        if _HEADERS[name] and v not in _HEADERS[name]:
            raise WebConfigError(f"http_server_config.headers.{name}: want one of"
                                 f" {', '.join(_HEADERS[name])}, got {v!r}")
        out.append((name, v))
    return tuple(out)


def load_web_config(path: str) -> WebConfig:
    """Read and check the whole file; WebConfigError says what is wrong in one line."""
    try:
        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f)
    except OSError as e:
        raise WebConfigError(f"{path}: {e.strerror or e}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise WebConfigError(f"{path}: not valid YAML: {first}") from None
    try:
        top = _mapping(doc, "web config")
        _check_keys(top, _TOP_KEYS, _UNSUPPORTED_TOP_KEYS, "web config")
        http = _mapping(top.get("http_server_config"), "http_server_config")
        _check_keys(http, _HTTP_KEYS, set(), "http_server_config")
        if not isinstance(http.get("http2", True), bool):
            raise WebConfigError("http_server_config.http2: want true or false")
        tls, client_certs = _tls(_mapping(top.get("tls_server_config"), "tls_server_config"),
                                 os.path.dirname(os.path.abspath(path)))
        return WebConfig(tls, client_certs, _users(top.get("basic_auth_users")),
                         _headers(http.get("headers")))
    except WebConfigError as e:
        raise WebConfigError(f"{path}: {e}") from None


class BasicAuth:
    """Checks `Authorization: Basic ...` against the configured users (see the module
    doc for the cache, the one-at-a-time bcrypt and the decoy hash)."""

    CACHE_SIZE = 1024

    def __init__(self, users: dict[str, bytes]) -> None:
        self.users = users
        self.bcrypt_checks = 0  # hashes computed: tests count these
        self._cache: OrderedDict[bytes, bool] = OrderedDict()
        self._lock = threading.Lock()  # the cache
        self._bcrypt = threading.Lock()  # one bcrypt at a time
        cost = max((int(h[4:6]) for h in users.values()), default=4)
        self._decoy = bcrypt.hashpw(b"decoy", bcrypt.gensalt(cost))

    def check(self, header: str | None) -> bool:
        if not header or header[:6].lower() != "basic ":
            return False
        try:
            raw = base64.b64decode(header[6:].strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        user, sep, password = raw.partition(b":")
        if not sep:
            return False
        key = hashlib.sha256(len(user).to_bytes(4, "big") + user + password).digest()
        with self._lock:
            known = self._cache.get(key)
            if known is not None:
                self._cache.move_to_end(key)
                return known
        hashed = self.users.get(user.decode("utf-8", "replace"))
        with self._bcrypt:
            self.bcrypt_checks += 1
            ok = bcrypt.checkpw(password, hashed or self._decoy) and hashed is not None
        with self._lock:
            self._cache[key] = ok
            while len(self._cache) > self.CACHE_SIZE:
                self._cache.popitem(last=False)
        return ok
