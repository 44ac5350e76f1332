"""tinyst.hub: HF cache lookup, stdlib download from a loopback hub, and refusal of bad hub input.

The oracle for the cache layout is huggingface_hub itself (run in a subprocess, since it reads its
env vars at import): it downloads from the same loopback server, and each side reads the other's cache.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hub_server import HubServer
from tinyst import hub

ENV_VARS = ("HF_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME", "HF_ENDPOINT", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE",
            "HF_TOKEN", "SENTENCE_TRANSFORMERS_HOME", "HUGGINGFACE_HUB_CACHE")
MODEL_FILES = {
    "config.json": b'{"hidden_size": 8}',
    "modules.json": b"[]",
    "1_Pooling/config.json": b'{"pooling_mode_mean_tokens": true}',
    "model.safetensors": bytes(range(256)) * 300,
}


def write_tree(root: Path, files: dict) -> Path:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def tree(root: Path) -> dict:
    """Every file below root (symlinks followed) as {relative posix path: bytes}."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def leftovers(cache: Path) -> list:
    return [p for p in cache.rglob("*") if ".part" in p.name or ".incomplete" in p.name or p.name.startswith(".ref")]


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for var in ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def served(clean_env, monkeypatch, tmp_path):
    """A loopback hub serving model org/tiny and dataset org/data; HF_ENDPOINT points at it."""
    write_tree(tmp_path / "hub" / "org" / "tiny", MODEL_FILES)
    write_tree(tmp_path / "hub" / "datasets" / "org" / "data", {"train.parquet": b"PAR1" * 50, "README.md": b"# d"})
    with HubServer(tmp_path / "hub") as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        yield server


def run_hf(code: str, env: dict) -> str:
    """Run huggingface_hub (the oracle) in a fresh interpreter with `env`; return its stdout."""
    full = {k: v for k, v in os.environ.items() if k not in ENV_VARS} | {"HF_HUB_DISABLE_TELEMETRY": "1"} | env
    out = subprocess.run([sys.executable, "-c", code], env=full, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip()


def test_cache_dir_env_order(monkeypatch, tmp_path):
    """HF_HUB_CACHE wins over HF_HOME/hub, which wins over ~/.cache/huggingface/hub."""
    for var in ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    assert hub.hub_cache_dir() == Path.home() / ".cache" / "huggingface" / "hub"
    monkeypatch.setenv("HF_HOME", str(tmp_path / "home"))
    assert hub.hub_cache_dir() == tmp_path / "home" / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "c"))
    assert hub.hub_cache_dir() == tmp_path / "c"


def test_cache_dir_matches_huggingface_hub(monkeypatch, tmp_path):
    """hub_cache_dir agrees with huggingface_hub.constants.HF_HUB_CACHE for HF_HOME and XDG_CACHE_HOME."""
    for env in ({"HF_HOME": str(tmp_path / "h")}, {"XDG_CACHE_HOME": str(tmp_path / "x")}):
        for var in ENV_VARS:
            monkeypatch.delenv(var, raising=False)
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        expected = run_hf("from huggingface_hub import constants as c; print(c.HF_HUB_CACHE)", env)
        assert hub.hub_cache_dir() == Path(expected)


@pytest.mark.parametrize("value, offline", [("1", True), ("true", True), ("YES", True), ("on", True),
                                            ("0", False), ("", False), ("no", False)])
def test_is_offline(monkeypatch, value, offline):
    """HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE are read with huggingface_hub's truthy set (1/true/yes/on)."""
    for var in ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", value)
    assert hub.is_offline() is offline
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", value)
    assert hub.is_offline() is offline


def test_cache_lookup_under_hf_home(monkeypatch, tmp_path):
    """A cached repo is found via HF_HOME: by refs/main, by a sha revision, by a named ref, and without refs."""
    for var in ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens: any network use would fail
    repo = tmp_path / "home" / "hub" / "models--org--tiny"
    old, new = "a" * 40, "b" * 40
    write_tree(repo / "snapshots" / old, {"config.json": b"{}"})
    write_tree(repo / "snapshots" / new, {"config.json": b"{}"})
    write_tree(repo / "refs", {"main": old.encode(), "v1": new.encode() + b"\n"})
    assert hub.snapshot_download("org/tiny") == repo / "snapshots" / old
    assert hub.snapshot_download("org/tiny", revision="v1") == repo / "snapshots" / new
    assert hub.snapshot_download("org/tiny", revision=new) == repo / "snapshots" / new
    (repo / "refs" / "main").unlink()
    os.utime(repo / "snapshots" / old, (1, 1))  # make `new` the newest snapshot
    assert hub.snapshot_download("org/tiny") == repo / "snapshots" / new
    with pytest.raises(OSError, match="127.0.0.1:9"):  # an unknown tag is not guessed from the snapshots
        hub.snapshot_download("org/tiny", revision="v2")


def test_dataset_cache_lookup(clean_env):
    """Datasets live under datasets--org--name in the same cache."""
    repo = clean_env / "datasets--org--data"
    write_tree(repo, {"refs/main": b"c" * 40, f"snapshots/{'c' * 40}/train.parquet": b"x"})
    assert hub.snapshot_download("org/data", repo_type="dataset") == repo / "snapshots" / ("c" * 40)


def test_offline_error_names_cache_path(clean_env, monkeypatch):
    """Offline with nothing cached: FileNotFoundError naming the repo, the cache path and offline mode."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(FileNotFoundError, match="not in the HF cache") as e:
        hub.snapshot_download("org/missing")
    assert str(clean_env / "models--org--missing") in str(e.value) and "offline" in str(e.value)
    monkeypatch.delenv("HF_HUB_OFFLINE")
    with pytest.raises(FileNotFoundError, match="local_files_only"):
        hub.snapshot_download("org/missing", local_files_only=True)


def test_download_then_cache_without_network(served, clean_env):
    """A download stores every file, writes refs/main last, and a later call needs no server."""
    path = hub.snapshot_download("org/tiny")
    sha = HubServer.sha_of("org/tiny")
    assert path == clean_env / "models--org--tiny" / "snapshots" / sha
    assert tree(path) == MODEL_FILES
    assert (clean_env / "models--org--tiny" / "refs" / "main").read_text() == sha
    assert leftovers(clean_env) == []
    served.stop()
    assert hub.snapshot_download("org/tiny") == path
    assert hub.resolve_model_path("org/tiny") == path


def test_huggingface_hub_reads_tinyst_cache(served, clean_env):
    """huggingface_hub, offline, finds the snapshot tinyst downloaded (same layout)."""
    path = hub.snapshot_download("org/tiny")
    served.stop()
    code = "import huggingface_hub as h; print(h.snapshot_download('org/tiny'))"
    assert Path(run_hf(code, {"HF_HUB_CACHE": str(clean_env), "HF_HUB_OFFLINE": "1"})) == path


def test_reads_huggingface_hub_symlinked_cache(served, clean_env):
    """A cache made by huggingface_hub (snapshot files are symlinks into blobs/) is read as-is."""
    code = "import huggingface_hub as h; print(h.snapshot_download('org/tiny'))"
    hf_path = Path(run_hf(code, {"HF_HUB_CACHE": str(clean_env), "HF_ENDPOINT": served.url}))
    assert (hf_path / "config.json").is_symlink()
    served.stop()
    assert hub.snapshot_download("org/tiny") == hf_path
    assert tree(hub.resolve_model_path("org/tiny")) == MODEL_FILES


def test_dataset_download_url_layout(served, clean_env):
    """Datasets are listed at /api/datasets/... and fetched from /datasets/{id}/resolve/{sha}/..."""
    path = hub.snapshot_download("org/data", repo_type="dataset", allow_patterns="*.parquet")
    sha = HubServer.sha_of("org/data")
    assert path == clean_env / "datasets--org--data" / "snapshots" / sha
    assert tree(path) == {"train.parquet": b"PAR1" * 50}
    assert served.requests == ["/api/datasets/org/data/revision/main", f"/datasets/org/data/resolve/{sha}/train.parquet"]


def test_allow_patterns(served, clean_env):
    """allow_patterns keeps only matching files; a trailing '/' means the whole folder."""
    path = hub.snapshot_download("org/tiny", allow_patterns=["*.json", "1_Pooling/"])
    assert sorted(tree(path)) == ["1_Pooling/config.json", "config.json", "modules.json"]


SIZE = len(MODEL_FILES["model.safetensors"])


@pytest.mark.parametrize("lfs, corrupt, truncate, error", [
    (True, b"x" * 10, None, "size"),                               # listing size
    (True, bytes(range(255, -1, -1)) * 300, None, "sha256"),       # listing lfs.sha256
    (False, bytes(range(255, -1, -1)) * 300, None, "sha256"),      # ETag header
    (False, None, SIZE // 2, "size"),                              # Content-Length (dropped connection)
    (True, MODEL_FILES["model.safetensors"] + b"!", None, "size"),  # more bytes than promised
])
def test_corrupt_download_rejected(served, clean_env, lfs, corrupt, truncate, error):
    """Wrong size or sha256 (from the listing, else from ETag/Content-Length) leaves nothing behind."""
    served.lfs = lfs
    if corrupt is not None:
        served.corrupt["model.safetensors"] = corrupt
    if truncate is not None:
        served.truncate["model.safetensors"] = truncate
    with pytest.raises(OSError, match=f"failed the {error} check"):
        hub.snapshot_download("org/tiny")
    repo = clean_env / "models--org--tiny"
    assert not (repo / "snapshots" / HubServer.sha_of("org/tiny")).exists()
    assert not (repo / "refs" / "main").exists()
    assert leftovers(clean_env) == []


@pytest.mark.parametrize("name", ["../evil.py", "/etc/evil", "a/../../evil", "a\\..\\evil", "C:/evil", "", None,
                                  "a/./b"])
def test_unsafe_file_names_rejected(served, clean_env, tmp_path, name):
    """A listing entry that could land outside the snapshot is refused before anything is downloaded."""
    served.extra_siblings.append({"rfilename": name})
    with pytest.raises(ValueError, match="unsafe file name") as e:
        hub.snapshot_download("org/tiny")
    assert repr(name) in str(e.value)
    assert served.requests == ["/api/models/org/tiny/revision/main"]
    assert not (tmp_path / "evil.py").exists() and not (clean_env / "models--org--tiny" / "refs").exists()


def test_bad_listing_sha_rejected(clean_env, monkeypatch, tmp_path):
    """A commit sha that is not 40 hex (it becomes a folder name) is refused."""
    write_tree(tmp_path / "hub" / "org" / "tiny", {"config.json": b"{}"})
    with HubServer(tmp_path / "hub") as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        monkeypatch.setattr(HubServer, "sha_of", staticmethod(lambda repo_id: "../../escape"))
        with pytest.raises(ValueError, match="40-hex"):
            hub.snapshot_download("org/tiny")
    assert not (clean_env / "escape").exists()


def test_404_message(served):
    """An unknown repo or revision raises FileNotFoundError with the URL, the status and a plain reason."""
    with pytest.raises(FileNotFoundError, match="404: repository or revision not found") as e:
        hub.snapshot_download("org/nope")
    assert f"{served.url}/api/models/org/nope/revision/main" in str(e.value)
    with pytest.raises(FileNotFoundError, match="revision/v9"):
        hub.snapshot_download("org/tiny", revision="v9")


def test_unreachable_endpoint(clean_env, monkeypatch):
    """A hub that cannot be reached gives an OSError naming the URL and the offline switch."""
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    with pytest.raises(OSError, match="HF_HUB_OFFLINE"):
        hub.snapshot_download("org/tiny")


def test_token_sent_as_bearer(served, monkeypatch):
    """HF_TOKEN goes out as 'Authorization: Bearer <token>' on every request."""
    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    hub.snapshot_download("org/tiny", allow_patterns="config.json")
    assert served.auth == ["Bearer hf_secret"] * 2


@pytest.mark.parametrize("repo_id", ["../x", "/abs", "a/b/c", "a//b", "org/na me", "org/-x", "org/x.", "a--b/c",
                                     "org/..", "x" * 97, ""])
def test_invalid_repo_id(clean_env, repo_id):
    """Repo ids outside the hub's rules are a ValueError before any cache or network access."""
    with pytest.raises(ValueError, match="invalid hub repo id"):
        hub.snapshot_download(repo_id)


@pytest.mark.parametrize("kwargs, error", [({"repo_type": "space"}, ValueError), ({"revision": "../x"}, ValueError),
                                           ({"revision": 3}, TypeError)])
def test_invalid_arguments(clean_env, kwargs, error):
    """Unknown repo types and unsafe or non-str revisions are refused with a clear error."""
    with pytest.raises(error, match="repo_type|revision"):
        hub.snapshot_download("org/tiny", **kwargs)


def test_resolve_model_path(served, clean_env, tmp_path):
    """A local folder is itself; a bare name is tried as sentence-transformers/<name>, then as-is."""
    local = write_tree(tmp_path / "local", {"config.json": b"{}"})
    assert hub.resolve_model_path(local) == local
    assert hub.resolve_model_path(str(local)) == local
    write_tree(tmp_path / "hub" / "sentence-transformers" / "tiny", {"config.json": b'{"st": 1}'})
    write_tree(tmp_path / "hub" / "bert-old", {"config.json": b'{"bare": 1}'})
    st = hub.resolve_model_path("tiny")
    assert st.parent.parent.name == "models--sentence-transformers--tiny" and tree(st) == {"config.json": b'{"st": 1}'}
    bare = hub.resolve_model_path("bert-old")
    assert bare.parent.parent.name == "models--bert-old" and tree(bare) == {"config.json": b'{"bare": 1}'}
    served.stop()
    assert hub.resolve_model_path("bert-old") == bare  # from the cache, under the bare name


@pytest.mark.parametrize("name", ["./no/such/dir", "/no/such/dir", "a/b/c", "a\\b"])
def test_resolve_model_path_not_found(clean_env, name):
    """A path-like name that does not exist is a FileNotFoundError, not a hub lookup."""
    with pytest.raises(FileNotFoundError, match="not a local folder"):
        hub.resolve_model_path(name)


def test_resolve_model_path_offline_message(clean_env, monkeypatch):
    """Offline, a bare name's error names the sentence-transformers/ repo ST would have used."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(FileNotFoundError, match="sentence-transformers/all-MiniLM-L6-v2"):
        hub.resolve_model_path("all-MiniLM-L6-v2")



def test_allow_patterns_later_call_fills_in(served, clean_env):
    """A later call asking for files an earlier filtered call skipped fetches just those, into the same snapshot."""
    first = hub.snapshot_download("org/tiny", allow_patterns="*.json")
    assert hub.snapshot_download("org/tiny", allow_patterns="config.json") == first  # cached: no request
    assert len(served.requests) == 1 + 3  # fnmatch's "*" crosses "/", as in huggingface_hub
    second = hub.snapshot_download("org/tiny", allow_patterns=["*.safetensors"])
    assert second == first and tree(second) == MODEL_FILES
    sha = HubServer.sha_of("org/tiny")
    assert served.requests[4:] == ["/api/models/org/tiny/revision/main", f"/org/tiny/resolve/{sha}/model.safetensors"]
    assert leftovers(clean_env) == []


def test_resolve_model_path_without_st_org(served, clean_env, tmp_path):
    """st_org=False (what models.Transformer needs) asks for the bare name only."""
    write_tree(tmp_path / "hub" / "bert-old", {"config.json": b"{}"})
    path = hub.resolve_model_path("bert-old", st_org=False)
    assert path.parent.parent.name == "models--bert-old"
    assert not any("sentence-transformers" in r for r in served.requests)


def test_sentence_transformer_from_loopback_hub(served, clean_env, tmp_path, l3_path):
    """tinyst.SentenceTransformer('org/name') downloads the model and embeds exactly like the local folder."""
    import shutil

    import torch

    from tinyst import SentenceTransformer

    shutil.copytree(l3_path, tmp_path / "hub" / "org" / "l3")
    texts = ["A man is eating food.", "The hub serves files."]
    from_hub = SentenceTransformer("org/l3", device="cpu").encode(texts, convert_to_tensor=True)
    local = SentenceTransformer(str(l3_path), device="cpu").encode(texts, convert_to_tensor=True)
    assert torch.equal(from_hub, local)
    sha = HubServer.sha_of("org/l3")
    assert (clean_env / "models--org--l3" / "refs" / "main").read_text() == sha
    assert f"/org/l3/resolve/{sha}/model.safetensors" in served.requests


def test_fills_in_huggingface_hub_snapshot(served, clean_env):
    """Files missing from an HF-made (symlinked) snapshot are added to it; its symlinks are not mistaken for escapes."""
    code = "import huggingface_hub as h; print(h.snapshot_download('org/tiny', allow_patterns='*.json'))"
    hf_path = Path(run_hf(code, {"HF_HUB_CACHE": str(clean_env), "HF_ENDPOINT": served.url}))
    assert hub.snapshot_download("org/tiny", allow_patterns="*.safetensors") == hf_path
    assert tree(hf_path) == MODEL_FILES and (hf_path / "config.json").is_symlink()


def test_symlinked_folder_in_snapshot_not_followed(served, clean_env, tmp_path):
    """A folder in the snapshot that links outside it is refused rather than written through."""
    sha = HubServer.sha_of("org/tiny")
    snap = write_tree(clean_env / "models--org--tiny" / "snapshots" / sha, {"config.json": b"{}"})
    (tmp_path / "outside").mkdir()
    (snap / "1_Pooling").symlink_to(tmp_path / "outside", target_is_directory=True)
    with pytest.raises(ValueError, match="1_Pooling/config.json"):
        hub.snapshot_download("org/tiny", allow_patterns="1_Pooling/")
    assert list((tmp_path / "outside").iterdir()) == []
