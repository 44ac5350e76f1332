"""tinyst.load_dataset against HF `datasets.load_dataset` on the same files: builders, hub-layout folders, split
strings, the HF cache and a loopback hub; plus the Arrow conversion cache and every bad-input error."""
import csv
import json
import os
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tinyst.datasets import Dataset, DatasetDict, load_dataset

sys.path.insert(0, os.path.dirname(__file__))
from hub_server import HubServer  # noqa: E402

ROWS = [{"s1": f"first {i}, \"quoted\"", "s2": f"second {i}", "score": i / 4, "n": i} for i in range(300)]


@pytest.fixture
def hf(tmp_path):
    datasets = pytest.importorskip("datasets")
    datasets.disable_progress_bars()
    cache = str(tmp_path / "hf_cache")

    def load(*args, **kwargs):
        out = datasets.load_dataset(*args, cache_dir=cache, **kwargs)
        return out if isinstance(out, datasets.Dataset) else {k: v for k, v in out.items()}
    return load


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "cache"))


def same(ours, theirs):
    """Both sides hold the same splits, columns, rows and order."""
    if isinstance(ours, DatasetDict):
        assert list(ours) == list(theirs)
        return all(same(ours[k], theirs[k]) for k in ours)
    assert ours.column_names == theirs.column_names
    assert ours.to_list() == theirs.to_list()
    return True


@pytest.fixture
def files(tmp_path):
    d = tmp_path / "files"
    d.mkdir()
    with open(d / "train.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(list(ROWS[0]))
        w.writerows([r.values() for r in ROWS])
    with open(d / "dev.tsv", "w") as f:
        f.write("s1\ts2\tscore\n" + "".join(f"a {i}\tb {i}\t{i / 2}\n" for i in range(50)))
    (d / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    (d / "test.json").write_text(json.dumps(ROWS[:20], indent=1))
    (d / "field.json").write_text(json.dumps({"version": 2, "rows": ROWS[:5]}))
    pq.write_table(pa.table({k: [r[k] for r in ROWS] for k in ROWS[0]}), d / "train.parquet", row_group_size=64)
    with pa.OSFile(str(d / "train.arrow"), "wb") as sink, pa.ipc.new_stream(sink, pa.schema([("x", pa.string())])) as w:
        w.write_table(pa.table({"x": ["u", "v"]}))
    return d


def test_builders_match_hf(hf, files):
    """csv, tsv, JSON Lines, JSON arrays, JSON field, parquet and arrow load as HF loads them."""
    cases = [("csv", {"data_files": str(files / "train.csv")}),
             ("csv", {"data_files": {"dev": [str(files / "dev.tsv")]}, "sep": "\t"}),
             ("json", {"data_files": {"train": str(files / "train.jsonl"), "test": str(files / "test.json")}}),
             ("json", {"data_files": str(files / "field.json"), "field": "rows"}),
             ("parquet", {"data_files": [str(files / "train.parquet"), str(files / "train.parquet")]}),
             ("arrow", {"data_files": str(files / "train.arrow")})]
    for builder, kw in cases:
        assert same(load_dataset(builder, **kw), hf(builder, **kw)), (builder, kw)


SPLITS = ["train", "train[:10]", "train[10:20]", "train[:10%]", "train[-50:]", "train[33%:66%]", "train[-200:-45]",
          "train[:1_0]", "train[250:999]", "train[:10]+test", "test+train[5:8]+test[-1:]", "train[:50%](pct1_dropremainder)"]


@pytest.mark.parametrize("split", SPLITS)
def test_split_strings_match_hf(hf, files, split):
    """Every HF split-string form selects the same rows in the same order."""
    kw = {"data_files": {"train": str(files / "train.jsonl"), "test": str(files / "test.json")}}
    assert same(load_dataset("json", split=split, **kw), hf("json", split=split, **kw))


@pytest.mark.parametrize("split,message", [("train[:abc]", "malformed"), ("train[5]", "malformed"), ("train[1:2:3]", "malformed"),
                                           ("train[:200%]", "percent"), ("train[:5](closest)", "rounding"),
                                           ("train[:10%](nearest)", "rounding"), ("train +test", "malformed"),
                                           ("dev", r"available splits are \['train'\]"), ("train[40:20]", "no rows")])
def test_bad_split_strings(files, split, message):
    """Malformed split strings and unknown splits raise a ValueError saying what is wrong."""
    with pytest.raises(ValueError, match=message):
        load_dataset("csv", data_files=str(files / "train.csv"), split=split)


README = """---
language:
- en
configs:
- config_name: pair
  data_files:
  - split: train
    path: pair/train-*
  - split: dev
    path: pair/dev-*
  - split: test
    path: pair/test-*
- config_name: triplet
  data_files:
  - split: train
    path: "triplet/train-*"
  - split: dev
    path: [triplet/dev-*]
  - split: test
    path: triplet/test-*
dataset_info:
  features:
  - name: anchor
    dtype: string
---
# all-nli look-alike
"""


def make_hub_folder(root, readme=True):
    """An all-nli-like repo: subset folders of {split}-00000-of-00001.parquet, README `configs:`."""
    for sub, cols in (("pair", ["anchor", "positive"]), ("triplet", ["anchor", "positive", "negative"])):
        (root / sub).mkdir(parents=True)
        for split, n in (("train", 60), ("dev", 12), ("test", 9)):
            table = pa.table({c: [f"{sub} {split} {c} {i}" for i in range(n)] for c in cols})
            pq.write_table(table, root / sub / f"{split}-00000-of-00001.parquet")
    if readme:
        (root / "README.md").write_text(README)
    return root


def test_hub_layout_folder_by_subset_and_split(hf, tmp_path):
    """A hub-layout folder with README configs loads by subset and split exactly as HF loads it."""
    repo = make_hub_folder(tmp_path / "all-nli")
    for name in ("pair", "triplet"):
        assert same(load_dataset(str(repo), name), hf(str(repo), name))
        for split in ("dev", "train[:10]+test"):
            assert same(load_dataset(str(repo), name, split=split), hf(str(repo), name, split=split))
    with pytest.raises(ValueError, match=r"several subsets \['pair', 'triplet'\]"):
        load_dataset(str(repo))
    with pytest.raises(ValueError, match="unknown subset 'pairs'"):
        load_dataset(str(repo), "pairs")


def test_readme_config_reader_options_match_hf(hf, tmp_path):
    """Builder options in a README config (here a csv `sep`) apply to that subset, as in HF."""
    repo = tmp_path / "semi"
    (repo / "data").mkdir(parents=True)
    (repo / "data" / "train.csv").write_text("a;b\nx, y;1\nz;2\n")
    (repo / "README.md").write_text("---\nconfigs:\n  - config_name: default\n    data_files: data/*.csv\n    sep: ';'\n---\n")
    assert same(load_dataset(str(repo)), hf(str(repo)))
    assert load_dataset(str(repo), split="train")["a"] == ["x, y", "z"]


def test_readme_patterns_stay_inside_the_folder(tmp_path):
    """README `configs:` patterns (untrusted, from the hub) may not reach files outside the dataset folder."""
    (tmp_path / "secret.csv").write_text("a\n1\n")
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "README.md").write_text("---\nconfigs:\n- config_name: x\n  data_files: ../secret.csv\n---\n")
    with pytest.raises(ValueError, match="outside the dataset folder"):
        load_dataset(str(repo), "x")


def test_hub_layouts_without_readme(hf, tmp_path):
    """data/{split}-NNNNN-of-NNNNN files (stsb-like) and split-named folders infer splits as HF; subset folders by name."""
    stsb = tmp_path / "stsb" / "data"
    stsb.mkdir(parents=True)
    for split, n in (("test", 4), ("train", 10), ("validation", 3)):
        pq.write_table(pa.table({"sentence1": [f"{split} {i}" for i in range(n)], "score": [i / 8 for i in range(n)]}),
                       stsb / f"{split}-00000-of-00001.parquet")
    assert same(load_dataset(str(stsb.parent)), hf(str(stsb.parent)))
    assert list(load_dataset(str(stsb.parent))) == ["train", "validation", "test"]
    kw = tmp_path / "kw"
    (kw / "dev").mkdir(parents=True)
    (kw / "training").mkdir()
    (kw / "dev" / "a.csv").write_text("x,y\n1,2\n")
    (kw / "training" / "b.csv").write_text("x,y\n3,4\n5,6\n")
    assert same(load_dataset(str(kw)), hf(str(kw)))
    repo = make_hub_folder(tmp_path / "no-readme", readme=False)  # HF needs README configs here; tinyst reads folders
    got = load_dataset(str(repo), "triplet", split="dev")
    assert got.column_names == ["anchor", "positive", "negative"] and got[0]["anchor"] == "triplet dev anchor 0"
    assert list(load_dataset(str(repo), "pair")) == ["train", "test", "dev"]  # HF order: train, validation, test, others
    with pytest.raises(ValueError, match="pick one with name="):
        load_dataset(str(repo))


def _fake_cache(hf_home, repo_id="org/all-nli"):
    sha = "0123456789abcdef0123456789abcdef01234567"
    repo = hf_home / "hub" / f"datasets--{repo_id.replace('/', '--')}"
    make_hub_folder(repo / "snapshots" / sha)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(sha)


def test_hub_id_from_hf_cache(tmp_path, monkeypatch):
    """A hub id found in the HF cache (datasets--org--name/snapshots/<sha>) loads offline by subset and split."""
    _fake_cache(tmp_path / "hf_home")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    ds = load_dataset("org/all-nli", "pair", split="dev")
    assert len(ds) == 12 and ds.column_names == ["anchor", "positive"] and ds.split == "dev"
    with pytest.raises(FileNotFoundError, match="not in the HF cache"):
        load_dataset("org/missing", "pair")


def test_hub_id_downloaded_from_loopback_server(tmp_path, monkeypatch):
    """With HF_ENDPOINT pointing at a loopback hub, a hub id is downloaded into the cache, then loaded."""
    make_hub_folder(tmp_path / "served" / "datasets" / "org" / "nli")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    for var in ("HF_HUB_CACHE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    with HubServer(tmp_path / "served") as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        ds = load_dataset("org/nli", "triplet", split="test[-3:]")
    assert ds["anchor"] == [f"triplet test anchor {i}" for i in (6, 7, 8)]
    assert any(p.endswith("triplet/test-00000-of-00001.parquet") for p in hub.requests)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # now cached: no server needed
    assert len(load_dataset("org/nli", "pair", split="train")) == 60


def test_conversion_cache_and_memory_map(tmp_path):
    """A parquet is converted once to a cached Arrow file (reused, refreshed on change) and memory-mapped, not copied."""
    path = tmp_path / "big.parquet"
    pq.write_table(pa.table({"a": [f"text {i} " * 8 for i in range(200_000)], "b": [f"other {i}" for i in range(200_000)]}), path)
    cache = tmp_path / "cache"
    before = pa.total_allocated_bytes()
    ds = load_dataset("parquet", data_files=str(path), split="train", cache_dir=cache)
    assert pa.total_allocated_bytes() - before < ds.data.nbytes / 20  # buffers live in the mmap, not Arrow's heap
    converted = list(cache.glob("parquet-*.arrow"))
    assert len(converted) == 1
    stamp = converted[0].stat().st_mtime_ns
    assert load_dataset("parquet", data_files=str(path), split="train[:5]", cache_dir=cache)["b"][-1] == "other 4"
    assert converted[0].stat().st_mtime_ns == stamp  # reused, not rewritten
    pq.write_table(pa.table({"a": ["x"], "b": ["y"]}), path)
    assert load_dataset("parquet", data_files=str(path), split="train", cache_dir=cache).to_list() == [{"a": "x", "b": "y"}]
    assert ds[199_999]["b"] == "other 199999"  # the old mapping stays valid


def test_shared_sick_tsv_matches_hf(hf, data_dir):
    """The real SICK TSV files load like HF's csv builder with sep='\\t' (columns, rows, types)."""
    kw = {"data_files": {"train": str(data_dir / "sick" / "SICK_train.txt"), "test": str(data_dir / "sick" / "SICK_trial.txt")},
          "sep": "\t"}
    assert same(load_dataset("csv", **kw), hf("csv", **kw))


def test_bad_inputs_raise_clear_errors(files, tmp_path):
    """Missing files, unknown builders, empty files, mixed types, unknown options and streaming each get a clear error."""
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "mixed.jsonl").write_text('{"a": 1}\n{"a": "x"}\n')
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "bad.parquet").write_text("not parquet at all")
    checks = [(FileNotFoundError, "no data file matches", lambda: load_dataset("csv", data_files=str(tmp_path / "nope.csv"))),
              (FileNotFoundError, "no data file matches", lambda: load_dataset("csv", data_files=str(tmp_path / "*.tsv"))),
              (FileNotFoundError, "no such file or folder", lambda: load_dataset("./missing/folder")),
              (ValueError, "unknown builder 'text'", lambda: load_dataset("text", data_files=str(files / "train.csv"))),
              (ValueError, "needs data_files", lambda: load_dataset("csv")),
              (ValueError, "is empty", lambda: load_dataset("csv", data_files=str(tmp_path / "empty.csv"))),
              (TypeError, "changed from number to string", lambda: load_dataset("json", data_files=str(tmp_path / "mixed.jsonl"))),
              (TypeError, "unknown option", lambda: load_dataset("csv", data_files=str(files / "train.csv"), field="x")),
              (ValueError, "streaming", lambda: load_dataset("csv", data_files=str(files / "train.csv"), streaming=True)),
              (ValueError, "cannot tell the format", lambda: load_dataset(str(tmp_path / "notes.txt"))),
              (ValueError, "could not read", lambda: load_dataset("parquet", data_files=str(tmp_path / "bad.parquet"))),
              (ValueError, "no top-level field", lambda: load_dataset("json", data_files=str(files / "field.json"), field="x"))]
    for kind, message, call in checks:
        with pytest.raises(kind, match=message):
            call()


def test_single_file_and_split_list(files):
    """A path to one data file loads as its own 'train' split; a list of split strings gives a list of Datasets."""
    ds = load_dataset(str(files / "train.jsonl"), split="train")
    assert isinstance(ds, Dataset) and len(ds) == 300
    a, b = load_dataset("parquet", data_files=str(files / "train.parquet"), split=["train[:2]", "train[-2:]"])
    assert a["n"] == [0, 1] and b["n"] == [298, 299]
