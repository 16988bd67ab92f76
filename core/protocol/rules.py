"""The tus 1.0.0 rules: from request headers and the stored Upload to a decision.

Every function here is pure: it reads headers (a case-insensitive mapping), the Upload
and the settings, and returns what to do or raises `TusError` with the spec's status.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .. import TUS_VERSION
from ..errors import TusError, bad_request
from ..upload import Upload
from .parse import (
    CHECKSUM_ALGORITHMS,
    Checksum,
    Concat,
    encode_metadata,
    http_date,
    parse_checksum,
    parse_concat,
    parse_defer_length,
    parse_metadata,
    parse_non_negative,
)

OFFSET_OCTET_STREAM = "application/offset+octet-stream"
# Every extension the server knows, in the order Tus-Extension lists them.
ALL_EXTENSIONS = (
    "creation",
    "creation-with-upload",
    "creation-defer-length",
    "termination",
    "concatenation",
    "concatenation-unfinished",
    "checksum",
    "expiration",
    "getting",
)
# Extensions that only make sense together with creation.
_NEEDS_CREATION = {"creation-with-upload", "creation-defer-length"}


@dataclass(frozen=True)
class TusSettings:
    """What the protocol layer needs to know about the server's configuration."""

    extensions: frozenset[str] = frozenset(ALL_EXTENSIONS)
    max_file_size: int = 0  # 0 = no limit
    max_body_size: int = 0  # 0 = no limit on one request body
    allow_empty: bool = False
    expiration: float = 0  # seconds an unfinished upload lives after its last write; 0 = forever

    @classmethod
    def build(cls, requested: set[str], storage_capabilities: set[str], **kwargs) -> TusSettings:
        """Enabled extensions = requested ∩ what the storage can do (+ creation when implied)."""
        enabled = set(requested)
        if enabled & _NEEDS_CREATION:
            enabled.add("creation")
        if "concatenation-unfinished" in enabled:
            enabled.add("concatenation")
        if not kwargs.get("expiration"):
            enabled.discard("expiration")
        storage_bound = {"concatenation", "concatenation-unfinished", "creation-defer-length", "termination"}
        enabled -= {ext for ext in storage_bound if ext not in storage_capabilities}
        return cls(extensions=frozenset(enabled), **kwargs)

    def has(self, extension: str) -> bool:
        return extension in self.extensions


def tus_extension_header(settings: TusSettings) -> str | None:
    names = [ext for ext in ALL_EXTENSIONS if ext in settings.extensions and ext != "getting"]
    return ",".join(names) or None


def options_headers(settings: TusSettings) -> dict[str, str]:
    headers = {"Tus-Resumable": TUS_VERSION, "Tus-Version": TUS_VERSION}
    extension = tus_extension_header(settings)
    if extension:
        headers["Tus-Extension"] = extension
    if settings.max_file_size:
        headers["Tus-Max-Size"] = str(settings.max_file_size)
    if settings.has("checksum"):
        headers["Tus-Checksum-Algorithm"] = ",".join(CHECKSUM_ALGORITHMS)
    return headers


def check_tus_resumable(method: str, headers: Mapping[str, str]) -> None:
    """412 with Tus-Version when the client speaks another protocol version.

    GET is a download, not a tus request, so browsers and curl may omit the header there.
    """
    value = headers.get("Tus-Resumable")
    if method in ("OPTIONS", "GET") and value is None:
        return
    if value != TUS_VERSION:
        raise TusError(
            412,
            f"Tus-Resumable must be {TUS_VERSION}" + ("" if value is None else f", got {value[:20]!r}"),
            {"Tus-Version": TUS_VERSION},
        )


def check_length_limit(length: int, settings: TusSettings) -> None:
    if settings.max_file_size and length > settings.max_file_size:
        raise TusError(413, f"Upload-Length {length} exceeds the maximum size {settings.max_file_size}")


def _content_length(headers: Mapping[str, str]) -> int | None:
    return parse_non_negative("Content-Length", headers.get("Content-Length"))


def _check_body_size(headers: Mapping[str, str], settings: TusSettings) -> None:
    size = _content_length(headers)
    if settings.max_body_size and size is not None and size > settings.max_body_size:
        raise TusError(413, f"request body of {size} bytes exceeds --max-body-size {settings.max_body_size}")


def has_upload_body(headers: Mapping[str, str]) -> bool:
    """True when a request carries tus upload bytes (offset+octet-stream, non-empty)."""
    if content_type(headers) != OFFSET_OCTET_STREAM:
        return False
    length = headers.get("Content-Length")
    if length is not None:
        return length.strip() not in ("", "0")
    return "chunked" in headers.get("Transfer-Encoding", "").lower()


def content_type(headers: Mapping[str, str]) -> str:
    return headers.get("Content-Type", "").split(";")[0].strip().lower()


@dataclass(frozen=True)
class CreationPlan:
    length: int | None
    metadata: dict[str, str] = field(default_factory=dict)
    concat: Concat | None = None
    with_body: bool = False
    checksum: Checksum | None = None


def plan_creation(headers: Mapping[str, str], settings: TusSettings) -> CreationPlan:
    if not settings.has("creation"):
        raise TusError(405, "creation is not enabled on this server", {"Allow": "OPTIONS"})
    concat = parse_concat(headers.get("Upload-Concat"))
    if concat is not None and not settings.has("concatenation"):
        raise bad_request("concatenation is not enabled on this server")
    metadata = parse_metadata(headers.get("Upload-Metadata"))
    with_body = has_upload_body(headers)
    if concat is not None and concat.kind == "final":
        if with_body:
            raise TusError(403, "a final upload cannot carry data; it is made of its partial uploads")
        # The final's length is the sum of its parts; any Upload-Length is ignored (spec).
        return CreationPlan(length=None, metadata=metadata, concat=concat)
    length = parse_non_negative("Upload-Length", headers.get("Upload-Length"))
    deferred = parse_defer_length(headers.get("Upload-Defer-Length"))
    if length is not None and deferred:
        raise bad_request("send either Upload-Length or Upload-Defer-Length, not both")
    if length is None and not deferred:
        raise bad_request("Upload-Length or Upload-Defer-Length: 1 is required")
    if deferred and not settings.has("creation-defer-length"):
        raise bad_request("creation-defer-length is not enabled on this server")
    if length is not None:
        if length == 0 and not settings.allow_empty:
            raise bad_request("Upload-Length must be greater than 0 (the server runs without --allow-empty)")
        check_length_limit(length, settings)
    checksum = None
    if with_body:
        if not settings.has("creation-with-upload"):
            raise bad_request("creation-with-upload is not enabled on this server")
        _check_body_size(headers, settings)
        body_size = _content_length(headers)
        if length is not None and body_size is not None and body_size > length:
            raise TusError(413, f"request body of {body_size} bytes exceeds Upload-Length {length}")
        checksum = _parse_enabled_checksum(headers, settings)
    return CreationPlan(length=length, metadata=metadata, concat=concat, with_body=with_body, checksum=checksum)


def _parse_enabled_checksum(headers: Mapping[str, str], settings: TusSettings) -> Checksum | None:
    value = headers.get("Upload-Checksum")
    if value is not None and not settings.has("checksum"):
        raise bad_request("the checksum extension is not enabled on this server")
    return parse_checksum(value)


@dataclass(frozen=True)
class PatchPlan:
    offset: int
    declared_length: int | None  # an Upload-Length that ends a deferred length
    checksum: Checksum | None
    content_length: int | None


def is_expired(upload: Upload, now: float) -> bool:
    return upload.expires_at is not None and not upload.is_complete and now >= upload.expires_at


def check_not_expired(upload: Upload, now: float) -> None:
    if is_expired(upload, now):
        raise TusError(410, "upload has expired")


def plan_patch(headers: Mapping[str, str], upload: Upload, settings: TusSettings, now: float) -> PatchPlan:
    if content_type(headers) != OFFSET_OCTET_STREAM:
        raise TusError(415, f"PATCH requires Content-Type: {OFFSET_OCTET_STREAM}")
    offset = parse_non_negative("Upload-Offset", headers.get("Upload-Offset"))
    if offset is None:
        raise bad_request("Upload-Offset is required")
    checksum = _parse_enabled_checksum(headers, settings)
    content_length = _content_length(headers)
    _check_body_size(headers, settings)
    if upload.is_final:
        raise TusError(403, "a final upload cannot be modified")
    check_not_expired(upload, now)
    declared = parse_non_negative("Upload-Length", headers.get("Upload-Length"))
    if declared is not None:
        if upload.length is not None:
            if declared != upload.length:
                raise bad_request(f"Upload-Length is already {upload.length} and cannot change")
            declared = None
        else:
            if declared < upload.offset:
                raise bad_request(f"Upload-Length {declared} is smaller than the offset {upload.offset}")
            if declared == 0 and not settings.allow_empty:
                raise bad_request("Upload-Length must be greater than 0 (the server runs without --allow-empty)")
            check_length_limit(declared, settings)
    if offset != upload.offset:
        raise TusError(409, f"Upload-Offset {offset} does not match the upload's offset {upload.offset}")
    length = declared if declared is not None else upload.length
    if length is not None and content_length is not None and offset + content_length > length:
        raise TusError(413, f"request body of {content_length} bytes goes past Upload-Length {length}")
    return PatchPlan(offset=offset, declared_length=declared, checksum=checksum, content_length=content_length)


def upload_expires_header(upload: Upload) -> dict[str, str]:
    if upload.expires_at is None or upload.is_complete:
        return {}
    return {"Upload-Expires": http_date(upload.expires_at)}


def head_headers(upload: Upload, part_url) -> dict[str, str]:
    """The headers of a HEAD answer. `part_url(id)` renders a partial's URL for Upload-Concat."""
    headers = {"Tus-Resumable": TUS_VERSION, "Cache-Control": "no-store"}
    final_pending = upload.is_final and not upload.is_complete
    if not final_pending:
        # A final still waiting for its parts has no offset yet (spec: concatenation).
        headers["Upload-Offset"] = str(upload.offset)
    if upload.length is not None:
        headers["Upload-Length"] = str(upload.length)
    elif not upload.is_final:
        headers["Upload-Defer-Length"] = "1"
    if upload.metadata:
        headers["Upload-Metadata"] = encode_metadata(upload.metadata)
    if upload.is_partial:
        headers["Upload-Concat"] = "partial"
    elif upload.is_final:
        headers["Upload-Concat"] = "final;" + " ".join(part_url(p) for p in upload.parts or [])
    headers.update(upload_expires_header(upload))
    return headers


def part_id_from_url(url: str, base_path: str) -> str | None:
    """The upload id a concatenation URL names (absolute or relative), or None if not ours."""
    path = url
    if "://" in url:
        path = "/" + url.split("://", 1)[1].partition("/")[2]
    path = path.split("?", 1)[0].rstrip("/")
    prefix = base_path.rstrip("/") + "/"
    if not path.startswith(prefix):
        return None
    rest = path[len(prefix):]
    return rest if rest and "/" not in rest else None
