"""Find a model or dataset by hub name: in the local HF cache, else download it (stdlib only).

Mirrors `huggingface_hub.snapshot_download` as ST 3.4 uses it, on the same cache layout:
`{cache}/models--org--name/refs/main` holds a commit sha, `snapshots/{sha}/` holds the files.
This is the only tinyst file that touches the network. Env vars: HF_HUB_CACHE, HF_HOME, HF_ENDPOINT,
HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE), HF_TOKEN, SENTENCE_TRANSFORMERS_HOME.
Hub listings are untrusted: names that could escape the snapshot are refused, every file is checked
against its size and sha256 and gets its final name only when complete (os.replace), and nothing
downloaded is ever executed.
Not included: blobs/ deduplication (files sit straight in snapshots/{sha}/; an HF-made cache that
symlinks into blobs/ reads fine), update checks for cached repos, hf_transfer/xet, uploads.
"""
import fnmatch
import hashlib
import http.client
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
_NAME = r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?"  # the hub's rule: no leading/trailing '-' or '.'
_REPO_ID = re.compile(rf"(?:{_NAME}/)?{_NAME}")
_REVISION = re.compile(r"[A-Za-z0-9_.\-/]{1,200}")
_COMMIT = re.compile(r"[0-9a-f]{40}")
_SHA256 = re.compile(r"[0-9a-f]{64}")


def hub_cache_dir() -> Path:
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache") / "huggingface"
    return Path(home).expanduser() / "hub"


def is_offline() -> bool:
    return any(os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on")
               for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def _check_repo_id(repo_id) -> None:
    if not isinstance(repo_id, str):
        raise TypeError(f"repo_id must be a str, got {type(repo_id).__name__}")
    if len(repo_id) > 96 or ".." in repo_id or "--" in repo_id or not _REPO_ID.fullmatch(repo_id):
        raise ValueError(f"invalid hub repo id {repo_id!r}: expected 'name' or 'org/name' of letters, digits, "
                         "'_', '-', '.' (no '..' or '--', at most 96 characters)")


def _check_rfilename(name, root: Path) -> None:
    """Refuse a hub file name that is absolute, climbs with '..', or would land outside `root`."""
    bad = (not isinstance(name, str) or not name or "\\" in name or "\0" in name or re.match(r"[A-Za-z]:", name)
           or PurePosixPath(name).is_absolute() or any(p in ("..", ".") for p in name.split("/")))
    # The parent, not the file: a file in an HF-made snapshot is a symlink into blobs/, which is fine.
    if bad or not (root / name).parent.resolve().is_relative_to(root.resolve()):
        raise ValueError(f"hub listing has an unsafe file name {name!r} (absolute, '..', or outside the snapshot)")


def _allowed(name: str, patterns) -> bool:
    if patterns is None:
        return True
    patterns = [patterns] if isinstance(patterns, str) else patterns
    return any(fnmatch.fnmatch(name, p + "*" if p.endswith("/") else p) for p in patterns)  # "dir/": all below


def _cached_snapshot(repo_dir: Path, revision: str | None) -> Path | None:
    snapshots, ref = repo_dir / "snapshots", repo_dir / "refs" / (revision or "main")
    sha = ref.read_text().strip() if ref.is_file() else revision
    if sha and _COMMIT.fullmatch(sha) and (snapshots / sha).is_dir():
        return snapshots / sha
    if revision in (None, "main") and snapshots.is_dir():
        # No ref (a cache copied by hand): the newest snapshot. Staging folders (".incomplete-*") never
        # match the sha pattern, so a half-finished download is never picked up.
        shas = [p for p in snapshots.iterdir() if p.is_dir() and _COMMIT.fullmatch(p.name)]
        return max(shas, key=lambda p: p.stat().st_mtime) if shas else None
    return None


def _open(url: str, missing: str = "repository or revision not found"):
    request = urllib.request.Request(url, headers={"User-Agent": "tinyst"})
    if os.environ.get("HF_TOKEN"):  # "unredirected": sent to the hub only, never to a host it redirects to
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
            length = resp.headers.get("Content-Length", "")
            length = int(length) if length.isdigit() else None
            # LFS files carry their sha256 as X-Linked-Etag (as ETag on the last hop); plain git files
            # carry a 40-hex blob sha1 there, which the 64-hex pattern skips.
            etag = (resp.headers.get("X-Linked-Etag") or resp.headers.get("ETag") or "").removeprefix("W/")
            etag = etag.strip('"').lower()
            sha256 = sha256 or (etag if _SHA256.fullmatch(etag) else None)
            limit = size if size is not None else length
            digest, n = hashlib.sha256(), 0
            while chunk := resp.read(1 << 20):
                n += len(chunk)
                if limit is not None and n > limit:  # stop early: never store more than was promised
                    break
                digest.update(chunk)
                out.write(chunk)
        for expected in {size, length} - {None}:
            if n != expected:
                got = f"more than {limit}" if n > limit else n
                raise OSError(f"download of {url} failed the size check: got {got} bytes, expected {expected}")
        if sha256 is not None and digest.hexdigest() != sha256.lower():
            raise OSError(f"download of {url} failed the sha256 check: got {digest.hexdigest()}, expected {sha256}")
        os.chmod(tmp, 0o644)  # mkstemp makes 0600 files; a cache is meant to be shareable
        os.replace(tmp, dest)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, http.client.HTTPException):  # e.g. IncompleteRead: the connection broke off
            raise OSError(f"download of {url} broke off: {e!r}") from None
        raise


def _download(repo_id: str, repo_type: str, revision: str, repo_dir: Path, allow_patterns) -> Path:
    endpoint = (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")
    rev = urllib.parse.quote(revision, safe="")
    with _open(f"{endpoint}/api/{repo_type}s/{repo_id}/revision/{rev}?blobs=true") as r:  # blobs: sizes, sha256
        try:
            info = json.loads(r.read())
        except ValueError as e:
            raise OSError(f"hub listing for {repo_id}@{revision} is not valid JSON: {e}") from None
    sha, siblings = (info.get("sha"), info.get("siblings")) if isinstance(info, dict) else (None, None)
    if not isinstance(sha, str) or not _COMMIT.fullmatch(sha) or not isinstance(siblings, list):
        raise ValueError(f"hub listing for {repo_id}@{revision} lacks a 40-hex 'sha' or a 'siblings' list")
    final = repo_dir / "snapshots" / sha  # safe: sha is 40 hex
    for s in siblings:  # check every name before writing anything: one bad entry refuses the whole listing
        _check_rfilename(s.get("rfilename") if isinstance(s, dict) else None, final)
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".incomplete-{sha}-"))
    os.chmod(staging, 0o755)
    base = f"{endpoint}/datasets/{repo_id}" if repo_type == "dataset" else f"{endpoint}/{repo_id}"
    try:
        for s in siblings:
            name, lfs = s["rfilename"], s.get("lfs") if isinstance(s.get("lfs"), dict) else {}
            size, sha256 = lfs.get("size", s.get("size")), lfs.get("sha256")  # both optional in a listing
            if not isinstance(size, (int, type(None))) or not _SHA256.fullmatch(str(sha256 or "0" * 64).lower()):
                raise ValueError(f"hub listing for {repo_id} has a malformed size/sha256 for {name!r}")
            if _allowed(name, allow_patterns) and not (final / name).is_file():
                url = f"{base}/resolve/{sha}/{urllib.parse.quote(name)}"
                _fetch(url, staging / name, size, sha256, f"file {name!r} not found in {repo_id}@{sha}")
        if not final.exists():
            os.replace(staging, final)  # the whole snapshot appears at once
        for f in sorted(staging.rglob("*")):  # or joins a snapshot that already holds other files
            if f.is_file():
                (final / f.relative_to(staging)).parent.mkdir(parents=True, exist_ok=True)
                os.replace(f, final / f.relative_to(staging))
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
    if revision is not None and not isinstance(revision, str):
        raise TypeError(f"revision must be a str, got {type(revision).__name__}")
    if revision is not None and (not _REVISION.fullmatch(revision) or {"", ".", ".."} & set(revision.split("/"))):
        raise ValueError(f"invalid revision {revision!r}: expected a branch, tag or commit sha")
    cache = Path(cache_dir).expanduser() if cache_dir is not None else hub_cache_dir()
    repo_dir = cache / f"{repo_type}s--{repo_id.replace('/', '--')}"
    found, offline = _cached_snapshot(repo_dir, revision), local_files_only or is_offline()
    # A snapshot fetched earlier with other allow_patterns may lack what is asked now: when a pattern
    # matches nothing in it, ask the hub again (files already there are not fetched twice).
    pats = [allow_patterns] if isinstance(allow_patterns, str) else allow_patterns or []
    if found is not None and (offline or all(
            any(_allowed(f.relative_to(found).as_posix(), [p]) for f in found.rglob("*")) for p in pats)):
        return found
    if offline:
        why = "local_files_only=True" if local_files_only else "offline mode is on (HF_HUB_OFFLINE)"
        raise FileNotFoundError(f"{repo_type} {repo_id!r} (revision {revision or 'main'}) is not in the HF cache "
                                f"at {repo_dir}, and {why}: download it first, or pass a local folder")
    return _download(repo_id, repo_type, revision or "main", repo_dir, allow_patterns)


def resolve_model_path(name_or_path, cache_dir=None, local_files_only=False, *, revision=None, st_org=True) -> Path:
    """A local model folder for `name_or_path`: the folder itself, or the hub snapshot of that name.
    As in ST, a bare name is tried as "sentence-transformers/<name>" first, then as-is ("bert-base-uncased");
    `st_org=False` skips that, as `models.Transformer(name)` needs (ST hands such names to transformers)."""
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise TypeError(f"model name or path must be a str or path, got {type(name_or_path).__name__}")
    if Path(name_or_path).expanduser().is_dir():
        return Path(name_or_path).expanduser()
    name = os.fspath(name_or_path)
    try:
        _check_repo_id(name)
    except ValueError:
        raise FileNotFoundError(f"{name!r} is not a local folder, nor a hub repo id like 'org/name'") from None
    cache_dir = cache_dir if cache_dir is not None else os.environ.get("SENTENCE_TRANSFORMERS_HOME")  # as ST
    cache = Path(cache_dir).expanduser() if cache_dir is not None else hub_cache_dir()
    names = [f"sentence-transformers/{name}", name] if st_org and "/" not in name else [name]
    for candidate in names:  # the cache first, for every candidate: a cached model never needs the network
        found = _cached_snapshot(cache / f"models--{candidate.replace('/', '--')}", revision)
        if found is not None:
            return found
    errors = []
    for candidate in names:
        try:
            return snapshot_download(candidate, revision=revision, cache_dir=cache, local_files_only=local_files_only)
        except FileNotFoundError as e:
            errors.append(e)
    raise errors[0]  # the first candidate is the name ST itself would have used
