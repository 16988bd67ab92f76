"""The Upload record: the one source of truth for HEAD, the storage, the info store and
hook payloads."""

from __future__ import annotations

import copy
import dataclasses
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

_UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
# Ids a pre-create hook may choose: safe in a URL path segment and as a file name.
_CUSTOM_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def new_upload_id() -> str:
    return str(uuid.uuid4())


def is_valid_upload_id(upload_id: str) -> bool:
    """True for ids this server could have issued: a UUID, or a hook-chosen safe name.

    Anything else (slashes, dots only, encoded separators) is never looked up, so it can
    never name a path outside the data directory.
    """
    if _UUID_RE.match(upload_id):
        return True
    return bool(_CUSTOM_ID_RE.match(upload_id)) and upload_id not in (".", "..")


@dataclass
class Upload:
    id: str
    length: int | None
    offset: int = 0
    metadata: dict[str, str] = field(default_factory=dict)
    created_at: int = field(default_factory=lambda: int(time.time()))
    is_partial: bool = False
    is_final: bool = False
    parts: list[str] | None = None
    storage: str = ""
    path: str | None = None
    # Unix time after which an unfinished upload is gone; None = never expires.
    expires_at: float | None = None
    # Finals (concatenation-unfinished) waiting for this partial upload to complete.
    finals_waiting: list[str] = field(default_factory=list)
    # Private bookkeeping of the storage (an S3 upload id, part list...). Never shown
    # in metadata, HEAD or hook payloads.
    storage_state: dict[str, Any] = field(default_factory=dict)

    @property
    def deferred_size(self) -> bool:
        return self.length is None

    @property
    def is_complete(self) -> bool:
        return self.length is not None and self.offset >= self.length

    def to_dict(self) -> dict[str, Any]:
        # What dataclasses.asdict gives, without its generic recursive copy (a tenth of
        # the CPU of a HEAD in our code): the containers are copied here, by hand.
        data = {name: getattr(self, name) for name in _FIELD_NAMES}
        data["metadata"] = dict(self.metadata)
        data["parts"] = list(self.parts) if self.parts is not None else None
        data["finals_waiting"] = list(self.finals_waiting)
        data["storage_state"] = copy.deepcopy(self.storage_state) if self.storage_state else {}
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Upload:
        return cls(**{k: v for k, v in data.items() if k in _FIELD_NAMES})

    def copy(self) -> Upload:
        return Upload.from_dict(self.to_dict())


_FIELD_NAMES = tuple(f.name for f in dataclasses.fields(Upload))
