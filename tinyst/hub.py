"""Find a model or dataset by hub name: in the local HF cache, else download it (stdlib only).

Mirrors what `huggingface_hub.snapshot_download` (v0.2x) does for ST 3.4, reading and writing the same
cache layout: `{cache}/models--org--name/refs/main` holds a commit sha, `snapshots/{sha}/` the files.
This is the only tinyst file that touches the network. Env vars honoured: HF_HUB_CACHE, HF_HOME,
HF_ENDPOINT, HF_HUB_OFFLINE (and TRANSFORMERS_OFFLINE), HF_TOKEN, SENTENCE_TRANSFORMERS_HOME.
Hub listings are untrusted input: file names that escape the snapshot folder are refused, each file
is checked against its size / sha256 and lands under its final name only when complete (os.replace).
Not included: blobs/ deduplication (files are stored straight in snapshots/{sha}/; an HF-made cache
with symlinks into blobs/ still reads fine), update checks for cached repos, hf_transfer/xet, uploads.
"""
import fnmatch
import hashlib
import json
import os
import re
import shutil
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path, PurePosixPath

DEFAULT_ENDPOINT = "https://huggingface.co"
TIMEOUT_S = 30
_NAME = r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?"  # hub rule: no leading/trailing '-' or '.'
_REPO_ID = re.compile(rf"(?:{_NAME}/)?{_NAME}")
_REVISION = re.compile(r"[A-Za-z0-9_.\-/]{1,200}")
_COMMIT = re.compile(r"[0-9a-f]{40}")
_SHA256 = re.compile(r"[0-9a-f]{64}")


def hub_cache_dir() -> Path:
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or "~/.cache"
    return Path(os.environ.get("HF_HOME") or Path(xdg) / "huggingface").expanduser() / "hub"


def is_offline() -> bool:
    truthy = {"1", "true", "yes", "on"}
    return any(os.environ.get(v, "").strip().lower() in truthy for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def _check_repo_id(repo_id) -> None:
    if not isinstance(repo_id, str):
        raise TypeError(f"repo_id must be a str, got {type(repo_id).__name__}")
    if len(repo_id) > 96 or ".." in repo_id or "--" in repo_id or not _REPO_ID.fullmatch(repo_id):
        raise ValueError(
            f"invalid hub repo id {repo_id!r}: expected 'name' or 'org/name' of letters, digits, '_', '-', '.' "
            "(no '..' or '--', at most 96 characters)"
        )


def _check_revision(revision: str) -> None:
    parts = revision.split("/")
    if not _REVISION.fullmatch(revision) or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"invalid revision {revision!r}: expected a branch, tag or commit sha")


def _check_rfilename(name, root: Path) -> Path:
    """The local path for a hub file name, refusing names that would land outside `root`."""
    bad = (
        not isinstance(name, str) or not name or "\\" in name or "\0" in name
        or PurePosixPath(name).is_absolute() or re.match(r"[A-Za-z]:", name)
        or any(p in ("..", ".") for p in name.split("/"))
    )
    path = root / name if not bad else None
    if bad or not path.resolve().is_relative_to(root.resolve()):
        raise ValueError(f"hub listing has an unsafe file name {name!r} (absolute, '..', or outside the snapshot)")
    return path


def _cached_snapshot(repo_dir: Path, revision: str | None) -> Path | None:
    snapshots = repo_dir / "snapshots"
    ref = repo_dir / "refs" / (revision or "main")
    if ref.is_file():
        sha = ref.read_text().strip()
        if _COMMIT.fullmatch(sha) and (snapshots / sha).is_dir():
            return snapshots / sha
    if revision and _COMMIT.fullmatch(revision) and (snapshots / revision).is_dir():
        return snapshots / revision
    if revision in (None, "main") and snapshots.is_dir():
        # No ref (e.g. a cache copied by hand): take the newest complete snapshot. Staging folders
        # (".incomplete-*") never match the sha pattern, so half-downloads are never picked up.
        shas = [p for p in snapshots.iterdir() if p.is_dir() and _COMMIT.fullmatch(p.name)]
        if shas:
            return max(shas, key=lambda p: p.stat().st_mtime)
    return None


def _open(url: str, missing: str = "repository or revision not found"):
    request = urllib.request.Request(url, headers={"User-Agent": "tinyst"})
    if os.environ.get("HF_TOKEN"):
        # "unredirected": the token goes to the hub only, never to a host it redirects us to (CDN).
        request.add_unredirected_header("Authorization", f"Bearer {os.environ['HF_TOKEN']}")
    try:
        return urllib.request.urlopen(request, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as e:
        if e.code == 404:
            raise FileNotFoundError(f"GET {url} -> HTTP 404: {missing}") from None
        hint = " (private or gated repo? set HF_TOKEN)" if e.code in (401, 403) else ""
        raise OSError(f"GET {url} -> HTTP {e.code} {e.reason}{hint}") from None
    except (urllib.error.URLError, TimeoutError) as e:
        reason = getattr(e, "reason", e)
        raise OSError(f"GET {url} failed: {reason} (set HF_HUB_OFFLINE=1 to use only the local cache)") from None


def _fetch(url: str, dest: Path, size: int | None, sha256: str | None, missing: str) -> None:
    """Stream `url` into a temp file beside `dest`, check size and sha256, then rename it into place."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, _open(url, missing) as resp:
            header_len = resp.headers.get("Content-Length")
            header_len = int(header_len) if header_len and header_len.isdigit() else None
            # LFS files carry their sha256 in X-Linked-Etag (ETag on the final hop); plain git files carry a
            # 40-hex blob sha1 there instead, which the 64-hex pattern ignores.
            etag = (resp.headers.get("X-Linked-Etag") or resp.headers.get("ETag") or "").removeprefix("W/").strip('"')
            sha256 = sha256 or (etag.lower() if _SHA256.fullmatch(etag.lower()) else None)
            limit = size if size is not None else header_len
            digest, n = hashlib.sha256(), 0
            while chunk := resp.read(1 << 20):
                n += len(chunk)
                if limit is not None and n > limit:  # stop early: never store more than promised
                    break
                digest.update(chunk)
                out.write(chunk)
        for expected in {size, header_len} - {None}:
            if n != expected:
                got = f"more than {limit}" if n > limit else n
                raise OSError(f"download of {url} failed the size check: got {got} bytes, expected {expected}")
        if sha256 is not None and digest.hexdigest() != sha256.lower():
            raise OSError(f"download of {url} failed the sha256 check: got {digest.hexdigest()}, expected {sha256}")
        os.chmod(tmp, 0o644)  # mkstemp makes 0600 files; cache files are meant to be shareable
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _merge(staging: Path, final: Path) -> None:
    if not final.exists():
        os.replace(staging, final)  # the whole snapshot appears at once
        return
    for f in sorted(staging.rglob("*")):  # adding files to a snapshot that already holds others
        if f.is_file():
            target = final / f.relative_to(staging)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(f, target)


def _download(repo_id: str, repo_type: str, revision: str, repo_dir: Path, allow_patterns) -> Path:
    endpoint = (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")
    rev = urllib.parse.quote(revision, safe="")
    with _open(f"{endpoint}/api/{repo_type}s/{repo_id}/revision/{rev}?blobs=true") as resp:
        try:
            info = json.loads(resp.read())
        except ValueError as e:
            raise OSError(f"hub listing for {repo_id}@{revision} is not valid JSON: {e}") from None
    sha = info.get("sha") if isinstance(info, dict) else None
    siblings = info.get("siblings") if isinstance(info, dict) else None
    if not isinstance(sha, str) or not _COMMIT.fullmatch(sha) or not isinstance(siblings, list):
        raise ValueError(f"hub listing for {repo_id}@{revision} lacks a 40-hex 'sha' or a 'siblings' list")
    snapshots = repo_dir / "snapshots"
    final = snapshots / sha
    # Check every name before writing anything: one bad entry refuses the whole listing.
    files = [(s, _check_rfilename(s.get("rfilename") if isinstance(s, dict) else None, final)) for s in siblings]
    if allow_patterns is not None:
        pats = [allow_patterns] if isinstance(allow_patterns, str) else list(allow_patterns)
        pats = [p + "*" if p.endswith("/") else p for p in pats]  # "folder/" means everything below it
        files = [(s, p) for s, p in files if any(fnmatch.fnmatch(s["rfilename"], pat) for pat in pats)]
    snapshots.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=snapshots, prefix=f".incomplete-{sha}-"))
    os.chmod(staging, 0o755)  # mkdtemp makes it private; the snapshot it becomes is meant to be shareable
    base = f"{endpoint}/datasets/{repo_id}" if repo_type == "dataset" else f"{endpoint}/{repo_id}"
    try:
        for s, path in files:
            name = s["rfilename"]
            lfs = s.get("lfs") if isinstance(s.get("lfs"), dict) else {}
            size = lfs.get("size", s.get("size"))
            sha256 = lfs.get("sha256")
            if (size is not None and not isinstance(size, int)) or (sha256 is not None and not _SHA256.fullmatch(str(sha256).lower())):
                raise ValueError(f"hub listing for {repo_id} has a malformed size/sha256 for {name!r}")
            if not (final / name).is_file():
                missing = f"file {name!r} not found in {repo_id}@{sha}"
                _fetch(f"{base}/resolve/{sha}/{urllib.parse.quote(name)}", staging / name, size, sha256, missing)
        _merge(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if revision != sha:  # the ref is written last: it marks the snapshot as complete
        ref = repo_dir / "refs" / revision
        ref.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=ref.parent, prefix=".ref.")
        with os.fdopen(fd, "w") as f:
            f.write(sha)
        os.chmod(tmp, 0o644)
        os.replace(tmp, ref)
    return final


def snapshot_download(repo_id, repo_type="model", revision=None, cache_dir=None, local_files_only=False,
                      allow_patterns=None) -> Path:
    """The local folder holding `repo_id` at `revision`: from the cache, else downloaded into it."""
    _check_repo_id(repo_id)
    if repo_type not in ("model", "dataset"):
        raise ValueError(f"repo_type must be 'model' or 'dataset', got {repo_type!r}")
    if revision is not None:
        if not isinstance(revision, str):
            raise TypeError(f"revision must be a str, got {type(revision).__name__}")
        _check_revision(revision)
    cache = Path(cache_dir).expanduser() if cache_dir is not None else hub_cache_dir()
    repo_dir = cache / f"{repo_type}s--{repo_id.replace('/', '--')}"
    found = _cached_snapshot(repo_dir, revision)
    if found is not None:
        return found
    if local_files_only or is_offline():
        why = "local_files_only=True" if local_files_only else "offline mode is on (HF_HUB_OFFLINE)"
        raise FileNotFoundError(
            f"{repo_type} {repo_id!r} (revision {revision or 'main'}) is not in the HF cache at {repo_dir}, and "
            f"{why}: download it first, or pass a local folder"
        )
    return _download(repo_id, repo_type, revision or "main", repo_dir, allow_patterns)


def resolve_model_path(name_or_path, cache_dir=None, local_files_only=False) -> Path:
    """A local model folder for `name_or_path`: the folder itself, or the hub snapshot of that name."""
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise TypeError(f"model name or path must be a str or path, got {type(name_or_path).__name__}")
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path
    name = os.fspath(name_or_path)
    try:
        _check_repo_id(name)
    except ValueError:
        raise FileNotFoundError(f"{name!r} is not a local folder, nor a hub repo id like 'org/name'") from None
    cache_dir = cache_dir if cache_dir is not None else os.environ.get("SENTENCE_TRANSFORMERS_HOME")
    # ST prepends its org to bare names ("all-MiniLM-L6-v2"); the bare name stays a fallback for old
    # org-less models such as "bert-base-uncased".
    names = [f"sentence-transformers/{name}", name] if "/" not in name else [name]
    cache = Path(cache_dir).expanduser() if cache_dir is not None else hub_cache_dir()
    for candidate in names:  # the cache first, for every candidate: a cached model never needs the network
        found = _cached_snapshot(cache / f"models--{candidate.replace('/', '--')}", None)
        if found is not None:
            return found
    errors = []
    for candidate in names:
        try:
            return snapshot_download(candidate, cache_dir=cache, local_files_only=local_files_only)
        except FileNotFoundError as e:
            errors.append(e)
    raise errors[0]  # the first candidate is the name ST itself would have used
