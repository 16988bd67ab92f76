"""Where a request really came from, when a trusted proxy says so. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class PublicOrigin:
    scheme: str
    host: str


def _forwarded_pairs(value: str) -> dict[str, str]:
    """The first element of a `Forwarded` header (RFC 7239), as lowercase keys."""
    first = value.split(",")[0]
    pairs = {}
    for item in first.split(";"):
        key, eq, val = item.strip().partition("=")
        if eq:
            pairs[key.strip().lower()] = val.strip().strip('"')
    return pairs


def public_origin(headers: Mapping[str, str], scheme: str, behind_proxy: bool) -> PublicOrigin:
    host = headers.get("Host", "localhost")
    if behind_proxy:
        forwarded = _forwarded_pairs(headers.get("Forwarded", ""))
        scheme = forwarded.get("proto") or _first(headers.get("X-Forwarded-Proto")) or scheme
        host = forwarded.get("host") or _first(headers.get("X-Forwarded-Host")) or host
    scheme = scheme.lower() if scheme.lower() in ("http", "https") else "http"
    # Drop the default port so Locations look like the URL the user typed.
    if (scheme == "https" and host.endswith(":443")) or (scheme == "http" and host.endswith(":80")):
        host = host.rsplit(":", 1)[0]
    return PublicOrigin(scheme, _safe_host(host))


def forwarded_prefix(headers: Mapping[str, str], behind_proxy: bool) -> str:
    """A path prefix the proxy mounts us under (X-Forwarded-Prefix), or ''."""
    if not behind_proxy:
        return ""
    prefix = _first(headers.get("X-Forwarded-Prefix")) or ""
    prefix = "/" + prefix.strip("/") if prefix.strip("/") else ""
    return prefix if all(c.isprintable() and c not in ' "<>\\' for c in prefix) else ""


def client_address(headers: Mapping[str, str], peer: str | None, behind_proxy: bool) -> str | None:
    if behind_proxy:
        forwarded = _forwarded_pairs(headers.get("Forwarded", ""))
        address = forwarded.get("for") or _first(headers.get("X-Forwarded-For"))
        if address:
            address = address.strip('"')
            if address.startswith("["):  # [v6]:port
                return address[1:].split("]")[0]
            if address.count(":") == 1:  # v4:port
                return address.split(":")[0]
            return address
    return peer


def _first(value: str | None) -> str | None:
    if not value:
        return None
    return value.split(",")[0].strip() or None


def _safe_host(host: str) -> str:
    # A Host header goes into Location: refuse anything that could break out of it.
    if not host or any(not c.isprintable() or c in ' /\\"<>@' for c in host):
        return "localhost"
    return host
