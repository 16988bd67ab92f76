"""Parsers for tus request headers. Each raises `TusError(400, ...)` on malformed input."""

from __future__ import annotations

import base64
import binascii
import email.utils
import re
from dataclasses import dataclass
from datetime import datetime, timezone

from ..errors import TusError, bad_request

MAX_METADATA_PAIRS = 256
CHECKSUM_ALGORITHMS = ("md5", "sha1", "sha256", "sha512")
_DIGITS = re.compile(r"^[0-9]{1,19}$")  # non-negative, fits comfortably in 64 bits
_B64 = re.compile(r"^[A-Za-z0-9+/]*={0,2}$")


def parse_non_negative(name: str, value: str | None) -> int | None:
    """An integer header such as Upload-Length or Upload-Offset; None if absent."""
    if value is None:
        return None
    value = value.strip()
    if not _DIGITS.match(value):
        raise bad_request(f"{name} must be a non-negative integer, got {value[:40]!r}")
    return int(value)


def parse_metadata(value: str | None) -> dict[str, str]:
    """Upload-Metadata: comma-separated `key base64value` pairs; the value may be absent.

    Strict: a malformed pair is an error (400), not silently dropped, so the client learns
    about it at creation instead of finding metadata missing later.
    """
    if value is None or value.strip() == "":
        return {}
    result: dict[str, str] = {}
    pairs = value.split(",")
    if len(pairs) > MAX_METADATA_PAIRS:
        raise bad_request(f"Upload-Metadata has more than {MAX_METADATA_PAIRS} pairs")
    for pair in pairs:
        parts = pair.strip().split(" ")
        if len(parts) > 2 or parts[0] == "":
            raise bad_request(f"Upload-Metadata pair {pair.strip()[:40]!r} is not 'key base64value'")
        key = parts[0]
        if not key.isascii() or not key.isprintable():
            raise bad_request("Upload-Metadata keys must be printable ASCII")
        if key in result:
            raise bad_request(f"Upload-Metadata key {key!r} appears twice")
        encoded = parts[1] if len(parts) == 2 else ""
        if not _B64.match(encoded) or len(encoded) % 4:
            raise bad_request(f"Upload-Metadata value of {key!r} is not valid base64")
        try:
            result[key] = base64.b64decode(encoded, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise bad_request(f"Upload-Metadata value of {key!r} is not base64 of UTF-8 text") from None
    return result


def encode_metadata(metadata: dict[str, str]) -> str:
    """The Upload-Metadata header for stored metadata; an empty value is sent as a bare key."""
    items = []
    for key, value in metadata.items():
        if value == "":
            items.append(key)
        else:
            items.append(f"{key} {base64.b64encode(value.encode()).decode()}")
    return ",".join(items)


@dataclass(frozen=True)
class Concat:
    kind: str  # "partial" or "final"
    part_urls: tuple[str, ...] = ()


def parse_concat(value: str | None) -> Concat | None:
    if value is None:
        return None
    value = value.strip()
    if value == "partial":
        return Concat("partial")
    if value.startswith("final;"):
        urls = tuple(u for u in value[len("final;"):].split(" ") if u)
        if not urls:
            raise bad_request("Upload-Concat: final; names no partial uploads")
        return Concat("final", urls)
    raise bad_request("Upload-Concat must be 'partial' or 'final;<url> <url>...'")


@dataclass(frozen=True)
class Checksum:
    algorithm: str
    digest: bytes


def parse_checksum(value: str | None) -> Checksum | None:
    if value is None:
        return None
    parts = value.strip().split(" ")
    if len(parts) != 2:
        raise bad_request("Upload-Checksum must be '<algorithm> <base64 digest>'")
    algorithm, encoded = parts
    if algorithm not in CHECKSUM_ALGORITHMS:
        raise bad_request(
            f"checksum algorithm {algorithm[:20]!r} is not supported; use one of {','.join(CHECKSUM_ALGORITHMS)}"
        )
    try:
        digest = base64.b64decode(encoded, validate=True)
    except binascii.Error:
        raise bad_request("Upload-Checksum digest is not valid base64") from None
    return Checksum(algorithm, digest)


def parse_defer_length(value: str | None) -> bool:
    if value is None:
        return False
    if value.strip() != "1":
        raise bad_request("Upload-Defer-Length must be 1")
    return True


def http_date(timestamp: float) -> str:
    """RFC 9110 IMF-fixdate, as Upload-Expires requires."""
    return email.utils.formatdate(timestamp, usegmt=True)


def parse_http_date(value: str) -> float:
    parsed = email.utils.parsedate_to_datetime(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


def utc_parts(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, tz=timezone.utc)


def reject(status: int, message: str) -> TusError:
    return TusError(status, message)
