"""A small local stand-in for the Hugging Face Hub API on 127.0.0.1 (the real Hub cannot be reached from tests).

It speaks just enough for huggingface_hub's ``create_repo``, ``create_branch`` and ``upload_folder`` /
``create_commit`` (``preupload``, the LFS batch API with "basic" PUT transfers for weights/Parquet files, and the
NDJSON ``commit`` endpoint whose regular files arrive base64-encoded), enough of ``tree``/``paths-info`` for
``datasets``' ``push_to_hub``, and a README YAML check like the Hub's; it records every call. Xet uploads are not
spoken: set ``huggingface_hub.constants.HF_HUB_DISABLE_XET = True`` (or ``HF_HUB_DISABLE_XET=1``). Point huggingface_hub at it with
``HF_ENDPOINT=server.url``.

>>> with HubServer() as hub:                      # doctest: +SKIP
...     os.environ["HF_ENDPOINT"] = hub.url
...     HfApi(token="hf_x").upload_folder(...)
...     hub.files[("model", "org/name", "main")]   # {path: bytes}
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlparse


def _validate_card(content: str) -> tuple[int, dict]:
    """Like the Hub's README check: the YAML front matter must parse to a mapping with list-valued tags."""
    import yaml

    m = re.match(r"^---\n(.*?)\n---\n", content, re.S)
    if not m:
        return 200, {"warnings": [{"message": "empty or missing yaml metadata in repo card"}]}
    try:
        meta = yaml.safe_load(m.group(1))
    except yaml.YAMLError as e:
        return 400, {"errors": [{"message": f"invalid YAML: {e}"}]}
    if not isinstance(meta, dict):
        return 400, {"errors": [{"message": "metadata must be a YAML mapping"}]}
    if "tags" in meta and not isinstance(meta["tags"], list):
        return 400, {"errors": [{"message": "\"tags\" must be an array"}]}
    return 200, {"warnings": []}


# Like the Hub's default .gitattributes: these go through LFS, the rest are regular (base64 in the commit).
LFS_SUFFIXES = (".safetensors", ".parquet", ".bin", ".arrow", ".pt", ".onnx", ".gguf", ".zip")


def _upload_mode(path: str) -> str:
    return "lfs" if path.endswith(LFS_SUFFIXES) else "regular"


class HubServer:
    def __init__(self, token: str | None = None) -> None:
        self.token = token  # when set, requests must carry "Authorization: Bearer <token>"
        self.calls: list[dict] = []  # {"method", "path", "json"?}
        self.repos: dict[tuple[str, str], dict] = {}  # (type, id) -> {"private": bool}
        self.files: dict[tuple[str, str, str], dict[str, bytes]] = {}  # (type, id, revision) -> {path: bytes}
        self.commits: list[dict] = []
        self.lfs: dict[str, bytes] = {}  # sha256 -> bytes uploaded through the LFS batch API
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> "HubServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self):
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def _send(self, code: int, obj=None, headers: dict | None = None) -> None:
                body = json.dumps(obj if obj is not None else {}).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def _body(self) -> bytes:
                n = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(n) if n else b""

            def _authorized(self) -> bool:
                if hub.token is None:
                    return True
                return self.headers.get("Authorization") == f"Bearer {hub.token}"

            def do_GET(self):  # noqa: N802
                path = unquote(urlparse(self.path).path)
                hub.calls.append({"method": "GET", "path": path})
                m = re.match(r"^/api/(model|dataset)s/([^/]+/[^/]+)(?:/revision/([^/]+))?$", path)
                if m and (m.group(1), m.group(2)) in hub.repos:
                    kind, rid, rev = m.group(1), m.group(2), m.group(3) or "main"
                    rev = "main" if rev == "0" * 40 else rev
                    files = hub.files.get((kind, rid, rev), {})
                    return self._send(200, {"id": rid, "sha": "0" * 40, "private": hub.repos[(kind, rid)]["private"],
                                            "siblings": [{"rfilename": p} for p in sorted(files)]})
                m = re.match(r"^/api/(model|dataset)s/([^/]+/[^/]+)/tree/([^/]+)/?(.*)$", path)
                if m and (m.group(1), m.group(2)) in hub.repos:
                    kind, rid, rev, sub = m.groups()
                    files = hub.files.get((kind, rid, "main" if rev == "0" * 40 else rev), {})
                    sub = sub.strip("/")
                    out = [{"type": "file", "path": p, "size": len(b), "oid": hashlib.sha1(b).hexdigest()}
                           for p, b in sorted(files.items()) if not sub or p.startswith(sub + "/")]
                    if sub and not out:
                        return self._send(404, {"error": "Entry not found"}, {"X-Error-Code": "EntryNotFound"})
                    return self._send(200, out)
                if path == "/api/agent-harnesses":
                    return self._send(200, {"standardEnvVars": [], "harnesses": []})
                m = re.match(r"^/api/whoami-v2$", path)
                if m:
                    return self._send(200, {"name": "tester", "type": "user", "orgs": []})
                return self._send(404, {"error": f"not found: {path}"}, {"X-Error-Code": "RepoNotFound"})

            def do_PUT(self):  # noqa: N802  (LFS "basic" transfer: the object's bytes)
                path = unquote(urlparse(self.path).path)
                raw = self._body()
                hub.calls.append({"method": "PUT", "path": path})
                m = re.match(r"^/lfs-upload/([0-9a-f]{64})$", path)
                if not m:
                    return self._send(404, {"error": f"not found: {path}"})
                if hashlib.sha256(raw).hexdigest() != m.group(1):
                    return self._send(400, {"error": "sha256 mismatch"})
                hub.lfs[m.group(1)] = raw
                return self._send(200, {})

            def do_POST(self):  # noqa: N802
                path = unquote(urlparse(self.path).path)
                raw = self._body()
                call = {"method": "POST", "path": path}
                hub.calls.append(call)
                if not self._authorized():
                    return self._send(401, {"error": "Invalid credentials"})
                m = re.match(r"^/(?:datasets/)?([^/]+/[^/]+)\.git/info/lfs/objects/batch$", path)
                if m:
                    data = json.loads(raw or b"{}")
                    call["json"] = data
                    objs = [{"oid": o["oid"], "size": o["size"], "authenticated": True,
                             "actions": {"upload": {"href": f"{hub.url}/lfs-upload/{o['oid']}", "header": {}}}}
                            for o in data.get("objects", []) if o["oid"] not in hub.lfs]
                    return self._send(200, {"transfer": "basic", "objects": objs})
                if path == "/api/validate-yaml":
                    data = json.loads(raw or b"{}")
                    call["json"] = data
                    return self._send(*_validate_card(data.get("content", "")))
                if path == "/api/repos/create":
                    data = json.loads(raw or b"{}")
                    call["json"] = data
                    kind = data.get("type") or "model"
                    rid = f"{data['organization']}/{data['name']}" if data.get("organization") else data["name"]
                    if (kind, rid) in hub.repos:
                        return self._send(409, {"error": "You already created this repo", "url": f"{hub.url}/{rid}"})
                    hub.repos[(kind, rid)] = {"private": bool(data.get("private")) or data.get("visibility") == "private"}
                    hub.files.setdefault((kind, rid, "main"), {})
                    return self._send(200, {"url": f"{hub.url}/{'datasets/' if kind == 'dataset' else ''}{rid}"})
                m = re.match(r"^/api/(model|dataset)s/([^/]+/[^/]+)/paths-info/(.+)$", path)
                if m:
                    from urllib.parse import parse_qs

                    kind, rid, rev = m.groups()
                    files = hub.files.get((kind, rid, "main" if rev == "0" * 40 else rev), {})
                    try:
                        wanted = json.loads(raw).get("paths", [])
                    except ValueError:
                        wanted = parse_qs(raw.decode()).get("paths", [])
                    out = []
                    for w in wanted:
                        if w in files:
                            out.append({"type": "file", "path": w, "size": len(files[w]),
                                        "oid": hashlib.sha1(files[w]).hexdigest()})
                        elif any(p.startswith(w.rstrip("/") + "/") for p in files):
                            out.append({"type": "directory", "path": w, "oid": "0" * 40})
                    return self._send(200, out)
                m = re.match(r"^/api/(model|dataset)s/([^/]+/[^/]+)/(preupload|commit|branch)/(.+)$", path)
                if not m:
                    return self._send(404, {"error": f"not found: {path}"})
                kind, rid, action, rev = m.groups()
                if (kind, rid) not in hub.repos:
                    return self._send(404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"})
                if action == "branch":
                    base = dict(hub.files.get((kind, rid, "main"), {}))
                    hub.files.setdefault((kind, rid, rev), base)
                    return self._send(200, {})
                rev = "main" if rev == "0" * 40 else rev
                if (kind, rid, rev) not in hub.files:
                    return self._send(404, {"error": f"Revision not found: {rev}"}, {"X-Error-Code": "RevisionNotFound"})
                if action == "preupload":
                    data = json.loads(raw or b"{}")
                    call["json"] = data
                    return self._send(200, {"files": [{"path": f["path"], "uploadMode": _upload_mode(f["path"]),
                                                       "shouldIgnore": False, "oid": None}
                                                      for f in data.get("files", [])]})
                # commit: NDJSON lines {"key": "header"|"file"|"deletedFile"|..., "value": {...}}
                lines = [json.loads(x) for x in raw.decode().splitlines() if x.strip()]
                store = hub.files[(kind, rid, rev)]
                added = []
                for item in lines:
                    if item["key"] == "file":
                        v = item["value"]
                        store[v["path"]] = base64.b64decode(v["content"]) if v.get("encoding") == "base64" \
                            else v["content"].encode()
                        added.append(v["path"])
                    elif item["key"] == "lfsFile":
                        v = item["value"]
                        if v["oid"] not in hub.lfs:
                            return self._send(400, {"error": f"LFS object {v['oid']} was never uploaded"})
                        store[v["path"]] = hub.lfs[v["oid"]]
                        added.append(v["path"])
                    elif item["key"] in ("deletedFile", "deletedFolder"):
                        store.pop(item["value"]["path"], None)
                header = next((x["value"] for x in lines if x["key"] == "header"), {})
                oid = hashlib.sha1(json.dumps(sorted(added)).encode() + str(len(hub.commits)).encode()).hexdigest()
                hub.commits.append({"repo": rid, "type": kind, "revision": rev, "summary": header.get("summary"),
                                    "files": added})
                prefix = "datasets/" if kind == "dataset" else ""
                return self._send(200, {"success": True, "commitOid": oid,
                                        "commitUrl": f"{hub.url}/{prefix}{rid}/commit/{oid}"})

        return Handler
