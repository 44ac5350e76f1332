"""A loopback HTTP server that serves folders in the Hugging Face hub's URL layout (for tests).

    root/org/name/...               model repo "org/name"
    root/datasets/org/name/...      dataset repo "org/name"

Routes (what `tinyst.hub` and huggingface_hub call):
    GET /api/{models|datasets}/{repo_id}/revision/{rev}     -> {"id", "sha", "siblings": [...]}
    GET|HEAD [/datasets]/{repo_id}/resolve/{rev_or_sha}/{path} -> file bytes (+ Content-Length, ETag)
Use as `with HubServer(root) as hub: os.environ["HF_ENDPOINT"] = hub.url`. Knobs to fake a bad hub:
`corrupt[rfilename] = bytes` serves other bytes than the listing describes; `truncate[rfilename] = n`
drops the connection after n bytes; `extra_siblings` adds raw
listing entries; `lfs=False` drops the size/lfs fields; `requests` / `auth` record each path asked for
and its Authorization header.
"""
import hashlib
import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class HubServer:
    def __init__(self, root, revisions=("main",), lfs=True):
        self.root = Path(root).resolve()
        self.revisions = set(revisions)  # names accepted besides a repo's own sha
        self.lfs = lfs
        self.corrupt: dict[str, bytes] = {}
        self.truncate: dict[str, int] = {}  # rfilename -> bytes actually sent (Content-Length stays full)
        self.extra_siblings: list = []
        self.requests: list[str] = []
        self.auth: list[str | None] = []  # the Authorization header of each request
        self._httpd = None

    @staticmethod
    def sha_of(repo_id: str) -> str:
        """The fake commit sha a repo is served under (stable, 40 hex)."""
        return hashlib.sha1(repo_id.encode()).hexdigest()

    def _repo_dir(self, kind: str, repo_id: str) -> Path | None:
        path = (self.root / ("datasets" if kind == "datasets" else "") / repo_id).resolve()
        return path if path.is_dir() and path.is_relative_to(self.root) else None

    def _listing(self, repo_id: str, repo: Path) -> dict:
        siblings = []
        for f in sorted(p for p in repo.rglob("*") if p.is_file()):
            entry = {"rfilename": f.relative_to(repo).as_posix()}
            if self.lfs:
                data = f.read_bytes()
                entry["size"] = len(data)
                entry["lfs"] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
            siblings.append(entry)
        return {"id": repo_id, "sha": self.sha_of(repo_id), "siblings": siblings + list(self.extra_siblings)}

    def _handle(self, handler: BaseHTTPRequestHandler) -> tuple[int, dict, bytes]:
        path = urllib.parse.unquote(urllib.parse.urlsplit(handler.path).path)
        self.requests.append(path)
        self.auth.append(handler.headers.get("Authorization"))
        parts = path.strip("/").split("/")
        if parts[:1] == ["api"] and len(parts) >= 5 and parts[1] in ("models", "datasets") and "revision" in parts:
            i = parts.index("revision")
            repo_id, rev = "/".join(parts[2:i]), "/".join(parts[i + 1:])
            repo = self._repo_dir(parts[1], repo_id)
            if repo is None or rev not in self.revisions | {self.sha_of(repo_id)}:
                return 404, {}, b'{"error": "Repository not found"}'
            return 200, {"Content-Type": "application/json"}, json.dumps(self._listing(repo_id, repo)).encode()
        kind = "datasets" if parts[:1] == ["datasets"] else "models"
        parts = parts[1:] if kind == "datasets" else parts
        if "resolve" not in parts:
            return 404, {}, b"not found"
        i = parts.index("resolve")
        repo_id, rev, rfilename = "/".join(parts[:i]), parts[i + 1] if len(parts) > i + 1 else "", "/".join(parts[i + 2:])
        repo = self._repo_dir(kind, repo_id)
        file = (repo / rfilename).resolve() if repo is not None else None
        if file is None or not file.is_file() or not file.is_relative_to(repo) or rev not in self.revisions | {self.sha_of(repo_id)}:
            return 404, {}, b"Entry not found"
        data = file.read_bytes()
        # Like an LFS file on the real hub: the sha256 as ETag, and the commit the name resolved to.
        headers = {"ETag": f'"{hashlib.sha256(data).hexdigest()}"', "X-Repo-Commit": self.sha_of(repo_id)}
        data = self.corrupt.get(rfilename, data)
        headers["Content-Length"] = str(len(data))
        return 200, headers, data[: self.truncate.get(rfilename, len(data))]

    def __enter__(self) -> "HubServer":
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self, send_body=True):
                status, headers, body = server._handle(self)
                self.send_response(status)
                for k, v in {"Content-Length": str(len(body)), **headers}.items():
                    self.send_header(k, v)
                self.end_headers()
                if send_body:
                    self.wfile.write(body)

            def do_HEAD(self):  # huggingface_hub asks for file metadata first
                self.do_GET(send_body=False)

            def log_message(self, *args):  # keep pytest output clean
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True).start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __exit__(self, *exc) -> None:
        self.stop()
