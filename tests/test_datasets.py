"""tinyst.Dataset / DatasetDict against HF `datasets` (the oracle): access, selection, shuffling, splits, map,
filter, column edits and the save_to_disk layout, plus the memory-mapped scratch files for on-disk data."""
import os
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from tinyst.datasets import Dataset, DatasetDict, load_dataset, load_from_disk
from tinyst.datasets import arrow_io

COLUMNS = {"anchor": [f"a{i}" for i in range(40)], "positive": [f"p{i % 7}" for i in range(40)],
           "label": [i % 3 for i in range(40)]}


@pytest.fixture
def hf():
    datasets = pytest.importorskip("datasets")
    datasets.disable_progress_bars()
    return datasets


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "cache"))


def pair(hf, columns=COLUMNS):
    return Dataset.from_dict(columns), hf.Dataset.from_dict(columns)


def test_access_matches_hf(hf):
    """len, column_names, int/negative/slice/stepped-slice/list/str indexing and iteration equal HF's."""
    ours, theirs = pair(hf)
    assert len(ours) == len(theirs) == ours.num_rows and ours.column_names == theirs.column_names
    for key in (0, 7, -1, -40, slice(3, 9), slice(None, 5), slice(-4, None), slice(1, 30, 7), slice(9, 3), [5, 0, 5], "positive"):
        got, want = ours[key], theirs[key]
        assert got == (list(want) if isinstance(key, str) else want), key
    assert list(ours) == list(theirs)
    assert list(ours.iter(batch_size=16)) == list(theirs.iter(batch_size=16))
    assert ours.to_list() == theirs.to_list() and ours.unique("positive") == theirs.unique("positive")
    with pytest.raises(IndexError, match="out of range"):
        ours[40]
    with pytest.raises(ValueError, match="not in the dataset"):
        ours["nope"]


def test_from_list_and_bad_columns():
    """from_list takes the first row's keys (as HF); mixed-type and ragged columns raise clear errors."""
    ds = Dataset.from_list([{"a": "x", "b": 1}, {"a": "y"}])
    assert ds.to_list() == [{"a": "x", "b": 1}, {"a": "y", "b": None}]
    with pytest.raises(TypeError, match="column 'b' mixes value types"):
        Dataset.from_dict({"a": ["x", "y"], "b": [1, "two"]})
    with pytest.raises(ValueError, match="different lengths"):
        Dataset.from_dict({"a": ["x", "y"], "b": [1]})
    assert len(Dataset.from_list([])) == 0


def test_select_shuffle_match_hf(hf):
    """select (list, range, array) and shuffle(seed) give HF's rows in HF's order."""
    ours, theirs = pair(hf)
    for idx in ([3, 1, 39, 3], range(5, 12), np.array([0, 20, 10])):
        assert ours.select(idx).to_list() == theirs.select(idx).to_list()
    for seed in (0, 42, 1234):
        assert ours.shuffle(seed=seed)["anchor"] == list(theirs.shuffle(seed=seed)["anchor"])
    gen = ours.shuffle(generator=np.random.default_rng(7))["anchor"]
    assert gen == list(theirs.shuffle(generator=np.random.default_rng(7))["anchor"])
    with pytest.raises(IndexError):
        ours.select([0, 40])


@pytest.mark.parametrize("kwargs", [{}, {"test_size": 0.1}, {"test_size": 7}, {"train_size": 0.6},
                                    {"train_size": 10, "test_size": 5}, {"test_size": 0.2, "shuffle": False}])
def test_train_test_split_matches_hf(hf, kwargs):
    """train_test_split sizes, rounding and permutation equal HF's for the same seed."""
    ours, theirs = pair(hf)
    got, want = ours.train_test_split(seed=3, **kwargs), theirs.train_test_split(seed=3, **kwargs)
    assert isinstance(got, DatasetDict) and list(got) == ["train", "test"]
    for split in ("train", "test"):
        assert got[split].to_list() == want[split].to_list()


def test_train_test_split_errors():
    """Out-of-range sizes raise a ValueError naming the argument."""
    ds = Dataset.from_dict(COLUMNS)
    for kwargs in ({"test_size": 1.5}, {"test_size": 40}, {"train_size": 0}, {"train_size": 30, "test_size": 20}):
        with pytest.raises(ValueError):
            ds.train_test_split(**kwargs)


def test_filter_matches_hf(hf):
    """filter with rows, batches, indices and input_columns keeps HF's rows."""
    ours, theirs = pair(hf)
    cases = [dict(function=lambda r: r["label"] == 1),
             dict(function=lambda b: [x.endswith("3") for x in b["positive"]], batched=True, batch_size=6),
             dict(function=lambda r, i: i % 4 == 0, with_indices=True),
             dict(function=lambda p: p == "p2", input_columns="positive")]
    for kw in cases:
        assert ours.filter(**kw).to_list() == theirs.filter(**kw).to_list()


def test_map_matches_hf(hf):
    """map adds/updates/removes columns in HF's column order, batched maps may change the row count."""
    ours, theirs = pair(hf)
    cases = [dict(function=lambda r: {"n": len(r["anchor"]), "label": r["label"] * 2}),
             dict(function=lambda r: {"z": 1, "positive": r["positive"].upper()}, remove_columns=["positive", "label"]),
             dict(function=lambda r, i: {"i": i}, with_indices=True),
             dict(function=lambda b: {"text": b["anchor"] + b["positive"]}, batched=True, batch_size=8,
                  remove_columns=["anchor", "positive", "label"]),
             dict(function=lambda a: {"a2": a + "!"}, input_columns="anchor"),
             dict(function=lambda r: None)]
    for kw in cases:
        got, want = ours.map(**kw), theirs.map(**kw)
        assert got.column_names == want.column_names and got.to_list() == want.to_list()


def test_map_errors():
    """map refuses row-count changes that keep input columns, and non-dict results."""
    ds = Dataset.from_dict(COLUMNS)
    with pytest.raises(ValueError, match="number of rows"):
        ds.map(lambda b: {"x": b["anchor"] * 2}, batched=True)
    with pytest.raises(TypeError, match="must return a dict"):
        ds.map(lambda r: r["anchor"])


def test_column_edits_match_hf(hf):
    """select_columns keeps the given order; remove/rename/add_column equal HF's; bad names raise ValueError."""
    ours, theirs = pair(hf)
    checks = [lambda d: d.select_columns(["label", "anchor"]), lambda d: d.remove_columns("positive"),
              lambda d: d.rename_column("anchor", "query"), lambda d: d.rename_columns({"anchor": "q", "label": "score"}),
              lambda d: d.add_column("id", list(range(40)))]
    for edit in checks:
        got, want = edit(ours), edit(theirs)
        assert got.column_names == want.column_names and got.to_list() == want.to_list()
    for bad in (lambda: ours.select_columns(["nope"]), lambda: ours.remove_columns("nope"),
                lambda: ours.rename_column("anchor", "label"), lambda: ours.add_column("label", [0] * 40),
                lambda: ours.add_column("x", [0])):
        with pytest.raises(ValueError):
            bad()


def test_dataset_dict_ops():
    """DatasetDict applies map/filter/columns/shuffle per split, and lists the splits on a bad key."""
    dd = Dataset.from_dict(COLUMNS).train_test_split(test_size=0.25, seed=0)
    assert dd.num_rows == {"train": 30, "test": 10} and dd.column_names["test"] == list(COLUMNS)
    out = dd.filter(lambda r: r["label"] != 2).map(lambda r: {"n": 1}).rename_column("positive", "pos")
    assert out.column_names["train"] == ["anchor", "pos", "label", "n"]
    assert all(set(ds["label"]) <= {0, 1} for ds in out.values())
    assert dd.shuffle(seeds={"train": 1, "test": 2})["test"]["anchor"] == dd["test"].shuffle(seed=2)["anchor"]
    with pytest.raises(KeyError, match="available splits"):
        dd["validation"]


def test_save_to_disk_round_trips_with_hf(hf, tmp_path):
    """tinyst's save_to_disk loads in HF and back; HF's saved Dataset/DatasetDict load in tinyst."""
    ours, theirs = pair(hf)
    ours.save_to_disk(tmp_path / "ours")
    assert hf.load_from_disk(str(tmp_path / "ours")).to_list() == ours.to_list()
    theirs.save_to_disk(str(tmp_path / "theirs"))
    assert Dataset.load_from_disk(tmp_path / "theirs").to_list() == theirs.to_list()
    dd = ours.train_test_split(test_size=0.5, seed=1)
    dd.save_to_disk(tmp_path / "dd")
    back = hf.load_from_disk(str(tmp_path / "dd"))
    assert {k: v.to_list() for k, v in back.items()} == {k: v.to_list() for k, v in dd.items()}
    back.save_to_disk(str(tmp_path / "dd_hf"))
    again = load_from_disk(tmp_path / "dd_hf")
    assert isinstance(again, DatasetDict) and again["test"].to_list() == dd["test"].to_list()
    ours.select([0, 1]).save_to_disk(tmp_path / "ours")  # overwrite in place: old folder swapped out whole
    assert len(load_from_disk(tmp_path / "ours")) == 2
    with pytest.raises(FileNotFoundError):
        load_from_disk(tmp_path / "nothing")


def _on_disk(tmp_path, n):
    path = tmp_path / "big.parquet"
    import pyarrow.parquet as pq
    pq.write_table(pa.table({"text": [f"sentence number {i} " * 4 for i in range(n)], "label": list(range(n))}), path)
    return load_dataset("parquet", data_files=str(path), split="train")


def test_map_on_disk_goes_to_an_arrow_file(tmp_path):
    """map over an on-disk dataset writes an Arrow scratch file and returns it memory-mapped (heap stays flat)."""
    ds = _on_disk(tmp_path, 100_000)
    before = pa.total_allocated_bytes()
    out = ds.map(lambda b: {"n": [len(t) for t in b["text"]]}, batched=True)
    assert out["n"][:2] == [len("sentence number 0 ") * 4, len("sentence number 1 ") * 4]
    assert pa.total_allocated_bytes() - before < out.data.nbytes / 10  # the result is not in Arrow's heap
    assert list(arrow_io.scratch_dir(arrow_io.cache_root()).glob("*.arrow"))


def test_large_select_streams_to_scratch(tmp_path, monkeypatch):
    """A selection above the in-RAM threshold of an on-disk dataset is written to a scratch file, rows intact."""
    ds = _on_disk(tmp_path, 5_000)
    monkeypatch.setattr("tinyst.datasets.dataset.SMALL_BYTES", 0)
    order = np.random.default_rng(0).permutation(len(ds))
    before = pa.total_allocated_bytes()
    out = ds.select(order)
    assert pa.total_allocated_bytes() - before < out.data.nbytes / 2
    assert out["label"] == order.tolist()


def _rss_file_mb():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) / 1024 for line in f if line.startswith("RssFile:"))


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux /proc")
def test_sequential_pass_releases_mapped_pages(tmp_path):
    """Pages of the mapped file touched by a pass count in RSS until release_pages; iter() releases them as it goes."""
    ds = _on_disk(tmp_path, 300_000)
    size_mb = ds.data.nbytes / 2**20
    base = _rss_file_mb()
    for chunk in ds.data.to_batches(65_536):  # touch every page without releasing
        chunk.column(0).to_pylist()
    assert _rss_file_mb() - base > 0.5 * size_mb
    arrow_io.release_pages()
    assert _rss_file_mb() - base < 0.1 * size_mb
    peak = base
    for _ in ds.iter(batch_size=4096):
        peak = max(peak, _rss_file_mb())
    assert peak - base < 0.5 * size_mb


@pytest.mark.slow
def test_three_million_rows_stay_flat(tmp_path):
    """The acceptance run: a 3,000,000-row parquet, load + one pass in batches of 4,096, RSS growth < 300 MB."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    import bench_datasets

    bench_datasets.make_parquet(tmp_path / "pairs.parquet", 3_000_000)
    result = bench_datasets.run_worker("tinyst", tmp_path / "pairs.parquet", tmp_path / "cache", 4096)
    assert result["rows"] == 3_000_000
    assert result["rss_growth_mb"] < 300 and result["anon_growth_mb"] < 300, result
