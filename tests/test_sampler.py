"""Batch samplers: batches identical to sentence-transformers 3.4.1 for the same seed, and invariants
(no duplicate text, each row once per epoch, >= 2 per label, exact __len__, DDP shards, resume)."""
import random
import warnings

import pytest
import torch
from torch.utils.data import ConcatDataset, SubsetRandomSampler

from tinyst import sampler as ts
from tinyst.datasets import Dataset
from tinyst.training_args import BatchSamplers, MultiDatasetBatchSamplers

st = pytest.importorskip("sentence_transformers.sampler")
hf_datasets = pytest.importorskip("datasets")


class ListColumns:
    """A dataset without a pyarrow `.data` (only len, column_names, ds[col] -> list): the samplers' slow path."""

    def __init__(self, columns: dict):
        self.columns = columns

    def __len__(self):
        return len(next(iter(self.columns.values())))

    @property
    def column_names(self):
        return list(self.columns)

    def __getitem__(self, name):
        return self.columns[name]


def make_ds(columns: dict, with_table: bool = True):
    return Dataset.from_dict(columns) if with_table else ListColumns(columns)


def pairs_data(n=600, pool=150, seed=0):
    """(anchor, positive, label) rows drawn from one small pool, so texts repeat within and across columns."""
    rng = random.Random(seed)
    texts = [f"text {i}" for i in range(pool)]
    return {"anchor": [rng.choice(texts) for _ in range(n)], "positive": [rng.choice(texts) for _ in range(n)],
            "label": [rng.randint(0, 9) for _ in range(n)]}


def run(sampler, epoch=0):
    sampler.set_epoch(epoch)
    return list(sampler)


def g():
    return torch.Generator()


def test_enums_are_strings():
    """The enums compare equal to their ST string values and reject unknown names with the choices."""
    assert BatchSamplers("no_duplicates") is BatchSamplers.NO_DUPLICATES == "no_duplicates"
    assert [m.value for m in BatchSamplers] == ["batch_sampler", "no_duplicates", "group_by_label"]
    assert MultiDatasetBatchSamplers.PROPORTIONAL == "proportional" and MultiDatasetBatchSamplers("round_robin")
    with pytest.raises(ValueError, match="group_by_label"):
        BatchSamplers("no_dupes")


@pytest.mark.parametrize("drop_last", [False, True])
def test_default_matches_st(drop_last):
    """DefaultBatchSampler epoch e == ST's BatchSampler(SubsetRandomSampler(range(N), g)) with g seeded seed + e."""
    ds = make_ds(pairs_data(101))
    for epoch in (0, 2):
        theirs = list(st.DefaultBatchSampler(SubsetRandomSampler(range(101), g().manual_seed(5 + epoch)), 8, drop_last))
        ours = ts.DefaultBatchSampler(ds, 8, drop_last, seed=5)
        assert run(ours, epoch) == theirs and len(ours) == len(theirs) == (12 if drop_last else 13)


@pytest.mark.parametrize("drop_last", [False, True])
def test_no_duplicates_matches_st(drop_last):
    """Same seed and epoch: NoDuplicates yields ST 3.4.1's exact batches, and its __len__ is the true count."""
    data = pairs_data()
    hf, ds = hf_datasets.Dataset.from_dict(data), make_ds(data)
    for epoch in (0, 1, 4):
        theirs = run(st.NoDuplicatesBatchSampler(hf, 16, drop_last, ["label"], g(), seed=3), epoch)
        ours = ts.NoDuplicatesBatchSampler(ds, 16, drop_last, ["label"], g(), seed=3)
        ours.set_epoch(epoch)
        assert len(ours) == len(theirs)
        assert list(ours) == theirs


def test_no_duplicates_invariants():
    """No value twice across a batch's non-label columns; each row at most once; short batches only if not drop_last."""
    data = pairs_data(800, pool=120, seed=1)
    for drop_last in (False, True):
        sampler = ts.NoDuplicatesBatchSampler(make_ds(data), 32, drop_last, seed=9)
        batches = run(sampler, 2)
        rows = [i for b in batches for i in b]
        assert len(rows) == len(set(rows)) and len(batches) == len(sampler)
        if not drop_last:
            assert sorted(rows) == list(range(800))
        else:
            assert all(len(b) == 32 for b in batches)
        for b in batches:
            texts = [t for i in b for t in {data["anchor"][i], data["positive"][i]}]
            assert len(texts) == len(set(texts))


def test_no_duplicates_lists_nulls_and_fallback():
    """List cells count per element, label columns are ignored, and a dataset without `.data` works the same."""
    data = {"anchor": ["a", "b", "c", "d"], "negatives": [["x", "y"], ["z"], ["q"], ["y"]], "score": [1.0] * 4}
    for with_table in (True, False):
        for epoch in range(6):
            batches = run(ts.NoDuplicatesBatchSampler(make_ds(data, with_table), 4, seed=epoch), epoch)
            assert len(batches) == 2 and not any({0, 3} <= set(b) for b in batches)  # rows 0 and 3 share "y"


def test_no_duplicates_all_same_text_warns():
    """A dataset whose rows all share one text gives single-row batches, and none at all with drop_last (warned)."""
    ds = make_ds({"anchor": ["same"] * 5, "positive": [f"p{i}" for i in range(5)]})
    assert [len(b) for b in ts.NoDuplicatesBatchSampler(ds, 2, False)] == [1] * 5
    with pytest.warns(UserWarning, match="no batch"):
        assert list(ts.NoDuplicatesBatchSampler(ds, 2, True)) == []


@pytest.mark.parametrize("drop_last", [False, True])
def test_group_by_label_matches_st(drop_last):
    """GroupByLabel yields ST 3.4.1's batches; each label in a batch appears an even number >= 2 of times."""
    data = pairs_data(203, seed=2)
    data["label"][7] = 99  # a singleton label: dropped
    hf, ds = hf_datasets.Dataset.from_dict(data), make_ds(data)
    for epoch in (0, 3):
        theirs = run(st.GroupByLabelBatchSampler(hf, 8, drop_last, ["score", "label"], g(), seed=4), epoch)
        ours = ts.GroupByLabelBatchSampler(ds, 8, drop_last, ["score", "label"], g(), seed=4)
        assert run(ours, epoch) == theirs and len(ours) == len(theirs)
        for b in theirs:
            labels = [data["label"][i] for i in b]
            assert all(labels.count(x) % 2 == 0 for x in labels)
        assert 7 not in {i for b in theirs for i in b}


def test_group_by_label_errors():
    """Odd batch size, no label column, or no repeated label are clear ValueErrors."""
    ds = make_ds({"text": ["a", "b", "c"], "label": [0, 1, 2]})
    with pytest.raises(ValueError, match="even"):
        ts.GroupByLabelBatchSampler(ds, 3, False)
    with pytest.raises(ValueError, match="valid_label_columns"):
        ts.GroupByLabelBatchSampler(ds, 2, False, valid_label_columns=["score"])
    with pytest.raises(ValueError, match="2 or more rows"):
        ts.GroupByLabelBatchSampler(ds, 2, False)


def test_batch_size_errors():
    """batch_size larger than the data with drop_last, or not a positive int, is refused with the sizes named."""
    ds = make_ds({"anchor": ["a", "b", "c"], "label": [0, 0, 1]})
    for cls in (ts.DefaultBatchSampler, ts.NoDuplicatesBatchSampler):
        with pytest.raises(ValueError, match="batch_size=4 is larger than the 3 rows"):
            cls(ds, 4, True)
    with pytest.raises(ValueError, match="batch_size=4 is larger than the 2 rows whose label"):
        ts.GroupByLabelBatchSampler(make_ds({"anchor": list("abcde"), "label": [0, 0, 1, 2, 3]}), 4, True)
    with pytest.raises(ValueError, match=">= 1"):
        ts.DefaultBatchSampler(ds, 0)
    with pytest.raises(TypeError, match="int"):
        ts.DefaultBatchSampler(ds, 2.0)
    with pytest.raises(ValueError, match="rank"):
        ts.DefaultBatchSampler(ds, 2, rank=2, world_size=2)
    assert len(ts.DefaultBatchSampler(ds, 4, False)) == 1


def three_datasets():
    """Three datasets of different sizes, the smallest in the middle (where ST's RoundRobin __len__ is off)."""
    parts = [pairs_data(n, seed=n) for n in (90, 40, 70)]
    hf_parts = [hf_datasets.Dataset.from_dict(p) for p in parts]
    return parts, ConcatDataset([make_ds(p) for p in parts]), ConcatDataset(hf_parts)


@pytest.mark.parametrize("multi", ["RoundRobinBatchSampler", "ProportionalBatchSampler"])
@pytest.mark.parametrize("sub", ["NoDuplicatesBatchSampler", "GroupByLabelBatchSampler"])
def test_multi_dataset_matches_st(multi, sub):
    """RoundRobin / Proportional yield ST 3.4.1's batches (Proportional: in ST's order wherever ST's sub-sampler
    __len__ is right; ST draws its order from those estimates); __len__ is the true count."""
    parts, ours_ds, hf_ds = three_datasets()
    shared_st, shared_ts = g(), g()
    st_subs = [getattr(st, sub)(d, 8, True, ["label"], shared_st, seed=11 + i) for i, d in enumerate(hf_ds.datasets)]
    ts_subs = [getattr(ts, sub)(d, 8, True, ["label"], shared_ts, seed=11 + i) for i, d in enumerate(ours_ds.datasets)]
    theirs = list(getattr(st, multi)(hf_ds, st_subs, shared_st, seed=21))
    ours = getattr(ts, multi)(ours_ds, ts_subs, shared_ts, seed=21)
    st_lens_exact = all(len(s) == len(list(s)) for s in st_subs)
    if multi == "RoundRobinBatchSampler" or st_lens_exact:
        assert list(ours) == theirs
    else:
        assert sorted(ours) == sorted(theirs)
    assert len(ours) == len(theirs)
    # ST's own interleaving loop over our (exact-length) samplers gives exactly our order
    assert list(ours) == list(getattr(st, multi)(ours_ds, ts_subs, shared_ts, seed=21))
    offsets = [0, 90, 130, 200]
    for b in theirs:  # every batch comes from one dataset
        assert len({next(d for d in range(3) if offsets[d] <= i < offsets[d + 1]) for i in b}) == 1


def test_round_robin_and_proportional_counts():
    """Batch counts as ST: RoundRobin stops at the first exhausted dataset, Proportional yields the sum."""
    _, ours_ds, _ = three_datasets()
    subs = [ts.DefaultBatchSampler(d, 10, True, seed=i) for i, d in enumerate(ours_ds.datasets)]  # 9, 4, 7 batches
    rr = ts.RoundRobinBatchSampler(ours_ds, subs)
    st_rr = st.RoundRobinBatchSampler(ours_ds, subs)  # ST's own loop over our samplers
    assert len(list(rr)) == len(rr) == len(list(st_rr)) == 4 * 3 + 1  # d0 yields once more before d1 runs out
    assert len(st_rr) == 12  # ST's estimate misses that batch
    prop = ts.ProportionalBatchSampler(ours_ds, subs, g(), seed=3)
    assert list(prop) == list(st.ProportionalBatchSampler(ours_ds, subs, g(), seed=3)) and len(prop) == 20


def test_multi_dataset_errors():
    """A multi-dataset sampler needs a ConcatDataset and one sampler per dataset."""
    _, concat, _ = three_datasets()
    subs = [ts.DefaultBatchSampler(d, 4) for d in concat.datasets]
    with pytest.raises(ValueError, match="3 datasets, 2 samplers"):
        ts.ProportionalBatchSampler(concat, subs[:2])
    with pytest.raises(TypeError, match="ConcatDataset"):
        ts.RoundRobinBatchSampler(concat.datasets[0], subs[:1])


def all_samplers(data, **kw):
    ds = make_ds(data)
    parts = ConcatDataset([ds, make_ds(pairs_data(64, seed=5))])
    return {
        "default": ts.DefaultBatchSampler(ds, 8, False, seed=1, **kw),
        "no_duplicates": ts.NoDuplicatesBatchSampler(ds, 8, False, seed=1, **kw),
        "group_by_label": ts.GroupByLabelBatchSampler(ds, 8, False, seed=1, **kw),
        "proportional": ts.ProportionalBatchSampler(parts, [ts.NoDuplicatesBatchSampler(d, 8, True, seed=2)
                                                            for d in parts.datasets], seed=1, **kw),
        "round_robin": ts.RoundRobinBatchSampler(parts, [ts.DefaultBatchSampler(d, 8, True, seed=2)
                                                         for d in parts.datasets], seed=1, **kw),
    }


@pytest.mark.parametrize("name", ["default", "no_duplicates", "group_by_label", "proportional", "round_robin"])
def test_deterministic_per_seed_and_epoch(name):
    """Same (seed, epoch) gives the same batches (also from a fresh sampler); a new epoch a new order."""
    data = pairs_data(200, seed=3)
    a, b = all_samplers(data)[name], all_samplers(data)[name]
    assert run(a, 1) == run(a, 1) == run(b, 1)
    assert run(a, 1) != (epoch2 := run(a, 2))
    assert len(a) == len(epoch2)  # NoDuplicates: the count may change with the epoch; __len__ follows it
    rows = [i for b in epoch2 for i in b]
    assert len(rows) == len(set(rows))  # each row at most once per epoch


@pytest.mark.parametrize("name", ["default", "no_duplicates", "group_by_label", "proportional", "round_robin"])
@pytest.mark.parametrize("world_size", [2, 3])
def test_ddp_shards(name, world_size):
    """Every rank yields len() batches, all equal; ranks take disjoint batches that interleave the global order."""
    data = pairs_data(203, seed=4)
    full = run(all_samplers(data, rank=0, world_size=1)[name], 1)
    per_rank = len(full) // world_size
    for rank in range(world_size):
        sampler = all_samplers(data, rank=rank, world_size=world_size)[name]
        shard = run(sampler, 1)
        assert len(shard) == per_rank == len(sampler)
        assert shard == full[rank:per_rank * world_size:world_size]


def test_rank_defaults_from_tinyst_distributed(monkeypatch):
    """Without rank/world_size arguments a sampler takes them from tinyst.distributed (the process group)."""
    from tinyst import distributed
    data = pairs_data(100)
    full = run(ts.DefaultBatchSampler(make_ds(data), 8, seed=1, rank=0, world_size=1))
    monkeypatch.setattr(distributed, "rank", lambda: 1)
    monkeypatch.setattr(distributed, "world_size", lambda: 2)
    sampler = ts.DefaultBatchSampler(make_ds(data), 8, seed=1)
    assert (sampler.rank, sampler.world_size) == (1, 2) and run(sampler) == full[1:12:2]


@pytest.mark.parametrize("name", ["default", "no_duplicates", "group_by_label", "proportional"])
def test_resume_mid_epoch(name):
    """skip_batches(k) after set_epoch resumes exactly where batch k left off, once; __len__ is unchanged."""
    sampler = all_samplers(pairs_data(200, seed=6), rank=1, world_size=2)[name]
    full = run(sampler, 3)
    sampler.set_epoch(3)
    sampler.skip_batches(4)
    assert list(sampler) == full[4:] and len(sampler) == len(full)
    assert list(sampler) == full  # the skip applied to one pass only


def test_samplers_do_not_touch_global_rng():
    """Without a generator the samplers use a private one: torch's global RNG stream is unchanged."""
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for sampler in all_samplers(pairs_data(100)).values():
            list(sampler)
    assert torch.equal(torch.rand(3), expected)
