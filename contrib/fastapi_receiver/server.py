"""The HTTP hook receiver of the hooks document (FastAPI), as the tests run it.

    uvicorn server:app --port 8080
    tuspluggy serve --hooks-http-urls "http://localhost:8080/hooks" --hooks-http-proxy-headers "Authorization"

Two additions to the document's example, both optional:
- with HOOKS_RECEIVER_LOG=/path/file.jsonl, every hook received is appended to that file
  as one JSON line (hook name, idempotency key, payload), so a test can see what arrived;
- POST /hooks/rename shows tuspluggy's answer to pre-create: a JSON object that gives the
  new upload another id and metadata (docs/hooks.md).
"""

import json
import os
from typing import Optional

from fastapi import Body, FastAPI, Header, HTTPException

app = FastAPI()


def remember(hook_name, idempotency_key, payload):
    path = os.environ.get("HOOKS_RECEIVER_LOG")
    if path:
        line = json.dumps({"hook_name": hook_name, "idempotency_key": idempotency_key, "payload": payload})
        with open(path, "a") as file:
            file.write(line + "\n")


@app.post("/hooks")
def hook(
    authorization: Optional[str] = Header(None),
    hook_name: Optional[str] = Header(None),
    idempotency_key: Optional[str] = Header(None),
    payload: dict = Body(None),
):
    print(f"Received: {hook_name}")
    if authorization != "Bearer jwt":
        raise HTTPException(401)
    remember(hook_name, idempotency_key, payload)
    return None


@app.post("/hooks/rename")
def rename(hook_name: Optional[str] = Header(None), payload: dict = Body(None)):
    """pre-create: call the upload after its "name" metadata and add a "checked" key."""
    if hook_name != "pre-create":
        return None
    upload = payload.get("upload") or {}
    metadata = dict(upload.get("metadata") or {})
    metadata["checked"] = "yes"
    answer = {"metadata": metadata}
    if metadata.get("name"):
        answer["id"] = "named-" + metadata["name"]
    return answer
