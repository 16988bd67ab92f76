"""GET download: which bytes to send and how to label them. Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote

from ..errors import TusError

# Only well-formed type/subtype tokens from metadata may reach the Content-Type header.
_MIME_RE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,63}$")
# Shown in the browser; anything else (HTML, SVG, scripts) is downloaded, never rendered
# on the upload server's origin.
_NUMBER = re.compile(r"^[0-9]{1,19}$")
_INLINE_TYPES = re.compile(r"^(image/(png|jpeg|gif|webp|avif|bmp)|video/[^/]+|audio/[^/]+|text/plain|application/pdf)$")


def content_type_for(metadata: dict[str, str]) -> str:
    filetype = (metadata.get("filetype") or metadata.get("content-type") or "").strip().lower()
    return filetype if _MIME_RE.match(filetype) else "application/octet-stream"


def content_disposition_for(metadata: dict[str, str], upload_id: str) -> str:
    mime = content_type_for(metadata)
    kind = "inline" if _INLINE_TYPES.match(mime) else "attachment"
    filename = (metadata.get("filename") or metadata.get("name") or upload_id).replace("\r", "").replace("\n", "")
    filename = filename.rsplit("/", 1)[-1].rsplit("\\", 1)[-1] or upload_id
    # An ASCII fallback with no quote or backslash, plus the exact name per RFC 6266/8187.
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\%' else "_" for c in filename)
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int  # exclusive

    @property
    def length(self) -> int:
        return self.end - self.start


def parse_range(value: str | None, size: int) -> ByteRange | None:
    """One `bytes=` range of a file of `size` bytes; None means the whole file.

    Several ranges in one request are answered with the whole file (RFC 9110 allows it).
    An unsatisfiable range is a 416.
    """
    if value is None:
        return None
    value = value.strip()
    if not value.startswith("bytes=") or "," in value:
        return None
    spec = value[len("bytes="):].strip()
    first, dash, last = spec.partition("-")
    if not dash:
        return None
    if not (_NUMBER.match(first) or first == "") or not (_NUMBER.match(last) or last == "") or first == last == "":
        return None  # malformed: ignore the header and send the whole file (RFC 9110)
    if first == "":
        if int(last) == 0:
            raise TusError(416, "an empty suffix range selects nothing", {"Content-Range": f"bytes */{size}"})
        start, end = max(0, size - int(last)), size
    else:
        start = int(first)
        if last != "" and int(last) < start:
            return None
        end = size if last == "" else min(int(last) + 1, size)
    if start >= size or end <= start:
        raise TusError(416, f"range {spec[:40]} is outside the {size} bytes stored", {"Content-Range": f"bytes */{size}"})
    return ByteRange(start, end)
