"""Batch samplers: which rows of a dataset form each batch, per epoch and per rank.

Mirrors `sentence_transformers/sampler.py` (ST 3.4) with ST's class names and ST v5's constructor
signatures and hierarchy (all subclass DefaultBatchSampler). With one process and the same seed the
batches are ST's own: the same `torch.randperm` draws, and NoDuplicates runs ST 3.4's greedy policy.
Differences, on purpose:
- every pass reseeds with `seed + epoch` (ST 3.4 only reseeds when `seed` is truthy), so an epoch is
  a pure function of (seed, epoch); multi-dataset samplers forward `set_epoch` to their samplers;
- `__len__` is exact (ST's NoDuplicates/GroupByLabel/RoundRobin lengths are estimates: DDP hangs).
  NoDuplicates' count can change with the epoch: call `set_epoch` before `len`;
- NoDuplicates hashes every text once with pyarrow at construction and only compares values that
  occur in two or more rows: fast on millions of rows;
- DDP: every rank walks the same global batch order and keeps batches `rank, rank + W, ...`, cut to
  `len(global) // W` so all ranks take the same number of steps (`batch_size` is per device).
Resume mid-epoch: `set_epoch(e)` then `skip_batches(k)`: the next pass starts after this rank's
first k batches (the trainer counts consumed batches itself; a DataLoader prefetches ahead).
`__len__` always counts the full epoch.
Not included: ST v5 callables and NO_DUPLICATES_HASHED, IterableDataset, accelerate's even_batches.
Like ST, NoDuplicates gets slow (quadratic) when one text fills a large share of all rows.
"""
import warnings
from itertools import chain, cycle, islice

import numpy as np
import pyarrow as pa
import torch
from torch.utils.data import Sampler

from tinyst import distributed

LABEL_COLUMNS = ["label", "score"]  # what ST's trainer passes as valid_label_columns


def _n_batches(n_rows: int, batch_size: int, drop_last: bool) -> int:
    return n_rows // batch_size if drop_last else -(-n_rows // batch_size)


def _too_small(n_rows: int, batch_size: int, what: str) -> ValueError:
    return ValueError(f"batch_size={batch_size} is larger than the {n_rows} {what} and drop_last=True: "
                      "no batch would be yielded; lower batch_size or set drop_last=False")


class DefaultBatchSampler(Sampler):
    """Shuffled batches: ST's `BatchSampler(SubsetRandomSampler(range(N), generator))` with the
    generator seeded `seed + epoch`. Also the base of the other samplers (as in ST v5): epoch
    seeding, rank sharding and resume live here; subclasses define `_global_batches/_global_len`.
    `valid_label_columns` is unused here; it keeps one signature for all samplers."""

    def __init__(self, dataset, batch_size: int, drop_last: bool = False, valid_label_columns=None,
                 generator=None, seed: int | None = 0, *, rank: int | None = None, world_size: int | None = None):
        if not hasattr(dataset, "__len__"):
            raise TypeError(f"dataset must have a length, got {type(dataset).__name__}")
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int):
            raise TypeError(f"batch_size must be an int, got {type(batch_size).__name__}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if drop_last and len(dataset) < batch_size:
            raise _too_small(len(dataset), batch_size, "rows")
        self.dataset, self.batch_size, self.drop_last = dataset, batch_size, bool(drop_last)
        self.generator, self.seed, self.epoch, self._skip = generator, int(seed or 0), 0, 0
        self.rank = distributed.rank() if rank is None else rank
        self.world_size = distributed.world_size() if world_size is None else world_size
        if not (isinstance(self.world_size, int) and self.world_size >= 1 and 0 <= self.rank < self.world_size):
            raise ValueError(f"need 0 <= rank < world_size, got rank={self.rank}, world_size={self.world_size}")

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def skip_batches(self, n: int) -> None:
        """Make the next pass start after this rank's first `n` batches (exact mid-epoch resume)."""
        if not isinstance(n, int) or n < 0:
            raise ValueError(f"skip_batches needs an int >= 0, got {n!r}")
        self._skip = n

    def _randperm(self, n: int) -> list[int]:
        g = self.generator if self.generator is not None else torch.Generator()
        g.manual_seed(self.seed + self.epoch)
        return torch.randperm(n, generator=g).tolist()

    def _chunks(self, rows: list[int]):
        for start in range(0, self._global_len() * self.batch_size, self.batch_size):
            yield rows[start:start + self.batch_size]

    def _global_batches(self):
        """All batches of this epoch, as every rank sees them (before sharding)."""
        return self._chunks(self._randperm(len(self.dataset)))

    def _global_len(self) -> int:
        return _n_batches(len(self.dataset), self.batch_size, self.drop_last)

    def __len__(self) -> int:
        return self._global_len() // self.world_size

    def __iter__(self):
        n, skip, self._skip = len(self), self._skip, 0
        if n == 0:
            warnings.warn(f"{type(self).__name__} yields no batch this epoch (rank {self.rank} of "
                          f"{self.world_size}, {self._global_len()} global batches)")
        mine = islice(self._global_batches(), self.rank, n * self.world_size, self.world_size)
        yield from islice(mine, skip, None)


class GroupByLabelBatchSampler(DefaultBatchSampler):
    """Batches with >= 2 rows of each label they contain (for the Batch*TripletLoss family).

    Rows are grouped by the first present column of `valid_label_columns` (default "label", "score"),
    each group cut to an even size (singletons vanish), groups laid end to end in a `randperm` order
    and the result cut into batches. Even groups and an even batch_size mean a group is only ever
    split at even offsets, so every label in a batch has an even count >= 2. Rows keep dataset order
    inside a group, as in ST."""

    def __init__(self, dataset, batch_size: int, drop_last: bool = False, valid_label_columns=None,
                 generator=None, seed: int | None = 0, *, rank=None, world_size=None) -> None:
        super().__init__(dataset, batch_size, drop_last, valid_label_columns, generator, seed,
                         rank=rank, world_size=world_size)
        if self.batch_size % 2:
            raise ValueError(f"GroupByLabelBatchSampler needs an even batch_size, got {self.batch_size}")
        valid = LABEL_COLUMNS if valid_label_columns is None else list(valid_label_columns)
        column = next((c for c in valid if c in dataset.column_names), None)
        if column is None:
            raise ValueError(f"None of the valid_label_columns {valid} are in the dataset, "
                             f"which only has these columns: {list(dataset.column_names)}")
        groups: dict = {}
        try:
            for i, label in enumerate(dataset[column]):
                groups.setdefault(label, []).append(i)
        except TypeError as e:
            raise TypeError(f"label column {column!r} must hold hashable values (numbers or strings): {e}") from None
        self.groups = {k: v[:len(v) // 2 * 2] for k, v in groups.items() if len(v) >= 2}
        self._n_rows = sum(len(v) for v in self.groups.values())
        if self._n_rows == 0:
            raise ValueError(f"no value of label column {column!r} occurs in 2 or more rows: nothing to batch")
        if self.drop_last and self._n_rows < self.batch_size:
            raise _too_small(self._n_rows, self.batch_size, "rows whose label occurs at least twice")

    def _global_batches(self):
        groups = list(self.groups.values())
        return self._chunks([i for g in self._randperm(len(groups)) for i in groups[g]])

    def _global_len(self) -> int:
        return _n_batches(self._n_rows, self.batch_size, self.drop_last)


def _column(dataset, name: str) -> pa.ChunkedArray:
    table = getattr(dataset, "data", None)  # fast path: the dataset's own pyarrow table
    if isinstance(table, pa.Table) and table.num_rows == len(dataset):
        return table.column(name)
    values = dataset[name]
    if isinstance(values, pa.ChunkedArray):
        return values
    try:
        return pa.chunked_array([values if isinstance(values, pa.Array) else pa.array(list(values))])
    except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
        raise TypeError(f"column {name!r} mixes value types, which NoDuplicates cannot compare: {e}") from None


def _row_keys(dataset, columns: list[str]) -> list:
    """Per row, what can clash with other rows: the id of its one value that also occurs in another
    row, a tuple of such ids when it has several, or a private negative id when it has none.

    Equal values get equal ids across columns: all string columns share one pyarrow dictionary (no
    Python loop per row); other types compare within their type. A list column contributes each
    element. Nulls compare equal to each other, like ST's `None == None`."""
    import pyarrow.compute as pc  # lazily: ~0.1 s of import time

    n_rows = len(dataset)
    kinds: dict = {}  # value type -> [(row of each value, values)]
    for name in columns:
        values, rows = _column(dataset, name), np.arange(n_rows)
        if pa.types.is_list(values.type) or pa.types.is_large_list(values.type):  # each element is a value
            rows, values = pc.list_parent_indices(values).to_numpy(), pc.list_flatten(values)
        if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
            values = values.cast(pa.large_string())  # one dictionary for all text columns
        kinds.setdefault(values.type, []).append((rows, values))
    rows, ids, n_ids = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)], 0
    for value_type, parts in kinds.items():
        chunks = [chunk for _, values in parts for chunk in values.chunks]
        encoded = pa.chunked_array(chunks, value_type).dictionary_encode(null_encoding="encode").chunks
        rows += [r for r, _ in parts]
        ids += [c.indices.to_numpy(zero_copy_only=False).astype(np.int64) + n_ids for c in encoded]
        n_ids += len(encoded[-1].dictionary) if encoded else 0  # subtle: the chunks share one growing dictionary
    rows, ids = np.concatenate(rows).astype(np.int64), np.concatenate(ids)  # (V,) one pair per value
    keep = np.bincount(ids, minlength=n_ids)[ids] >= 2  # a value held by one cell only never clashes
    rows, ids = rows[keep], ids[keep]
    single = np.bincount(rows, minlength=n_rows)[rows] == 1
    keys = -1 - np.arange(n_rows)  # (N,) private ids (< 0) for rows with nothing that can clash
    keys[rows[single]] = ids[single]
    keys, multi = keys.tolist(), {}
    for row, value in zip(rows[~single].tolist(), ids[~single].tolist()):  # rare unless list columns
        multi.setdefault(row, []).append(value)  # subtle: a value twice in one row (anchor == positive) is harmless
    for row, values in multi.items():
        keys[row] = tuple(values)
    return keys


def _no_duplicate_batches(order: list[int], keys: list, batch_size: int, drop_last: bool) -> list[list[int]]:
    """ST 3.4's greedy policy over `order`: scan the rows not yet used, in order, taking each row whose
    values are all new to the batch; stop when full. Skipped rows are retried first for the next
    batch. A scan that runs out yields a short batch unless drop_last (its rows are used either way)."""
    batches, pending, fresh, more = [], [], iter(order), len(order) > 0
    while pending or more:
        batch, seen, skipped = [], set(), []
        for row in chain(pending, fresh) if more else pending:  # subtle: `fresh` resumes where it stopped
            key = keys[row]  # hot loop (once per row and per retry): inlined, hence the repetition
            if key.__class__ is int:
                if key in seen:
                    skipped.append(row)
                    continue
                seen.add(key)
            elif seen.isdisjoint(key):
                seen.update(key)
            else:
                skipped.append(row)
                continue
            batch.append(row)
            if len(batch) == batch_size:
                break
        else:
            more = False
        scanned = len(batch) + len(skipped)
        pending = skipped + pending[scanned:]  # still in epoch order; pending[scanned:] only if full early
        if batch and (len(batch) == batch_size or not drop_last):
            batches.append(batch)
    return batches


class NoDuplicatesBatchSampler(DefaultBatchSampler):
    """Batches in which no value repeats across any of the non-label columns (for MNRL-style losses,
    where a duplicate text would be a false in-batch negative). Columns in `valid_label_columns`
    (default "label", "score"), "dataset_name" and "*_prompt_length" are ignored, as in ST."""

    def __init__(self, dataset, batch_size: int, drop_last: bool = False, valid_label_columns=None,
                 generator=None, seed: int | None = 0, *, rank=None, world_size=None) -> None:
        super().__init__(dataset, batch_size, drop_last, valid_label_columns, generator, seed,
                         rank=rank, world_size=world_size)
        skip = set(LABEL_COLUMNS if valid_label_columns is None else valid_label_columns) | {"dataset_name"}
        self.columns = [c for c in dataset.column_names if c not in skip and not c.endswith("_prompt_length")]
        self._keys = _row_keys(dataset, self.columns)
        self._cache = (None, [])  # ((seed, epoch), batches): __len__ and __iter__ share one computation

    def _batches(self) -> list[list[int]]:
        key = (self.seed, self.epoch)
        if self._cache[0] != key:
            order = self._randperm(len(self.dataset))
            self._cache = (key, _no_duplicate_batches(order, self._keys, self.batch_size, self.drop_last))
        return self._cache[1]

    def _global_batches(self):
        return iter(self._batches())

    def _global_len(self) -> int:
        return len(self._batches())


def _sub_batches(sampler):
    return sampler._global_batches() if isinstance(sampler, DefaultBatchSampler) else iter(sampler)


def _sub_len(sampler) -> int:
    return sampler._global_len() if isinstance(sampler, DefaultBatchSampler) else len(sampler)


class MultiDatasetDefaultBatchSampler(DefaultBatchSampler):
    """Interleaves the global batches of one sampler per dataset of a ConcatDataset; every batch
    comes from one dataset, its indices shifted by that dataset's offset in the concatenation."""

    def __init__(self, dataset, batch_samplers: list, generator=None, seed: int | None = 0,
                 *, rank=None, world_size=None) -> None:
        if not hasattr(dataset, "datasets"):
            raise TypeError(f"dataset must be a torch ConcatDataset, got {type(dataset).__name__}")
        if not batch_samplers or len(dataset.datasets) != len(batch_samplers):
            raise ValueError(f"need one batch sampler per dataset: {len(dataset.datasets)} datasets, "
                             f"{len(batch_samplers)} samplers")
        first = batch_samplers[0]
        super().__init__(dataset, first.batch_size, first.drop_last, None, generator, seed,
                         rank=rank, world_size=world_size)
        self.batch_samplers = list(batch_samplers)
        sizes = [len(d) for d in dataset.datasets]
        self.offsets = [sum(sizes[:i]) for i in range(len(sizes))]

    def set_epoch(self, epoch: int) -> None:
        super().set_epoch(epoch)
        for sampler in self.batch_samplers:  # subtle: ST does not, so its datasets repeat their order
            if hasattr(sampler, "set_epoch"):
                sampler.set_epoch(epoch)

    def _shifted(self, d: int, batch: list[int]) -> list[int]:
        return [i + self.offsets[d] for i in batch]


class RoundRobinBatchSampler(MultiDatasetDefaultBatchSampler):
    """One batch of dataset 0, 1, ..., k-1, 0, 1, ...; stops at the first dataset that runs out,
    so every dataset is drawn (almost) equally often and larger datasets are not fully used."""

    def _global_batches(self):
        iterators = [_sub_batches(s) for s in self.batch_samplers]
        for d in cycle(range(len(iterators))):
            batch = next(iterators[d], None)
            if batch is None:
                return
            yield self._shifted(d, batch)

    def _global_len(self) -> int:
        lens = [_sub_len(s) for s in self.batch_samplers]
        # full rounds, then the datasets before the first one to run out
        return min(lens) * len(lens) + lens.index(min(lens))


class ProportionalBatchSampler(MultiDatasetDefaultBatchSampler):
    """Every batch of every dataset, in a random order: dataset d is picked len(sampler_d) times."""

    def _global_batches(self):
        lens = [_sub_len(s) for s in self.batch_samplers]
        owners = [d for d, n in enumerate(lens) for _ in range(n)]  # (sum lens,) dataset of each slot
        iterators = [_sub_batches(s) for s in self.batch_samplers]
        for slot in self._randperm(len(owners)):  # ST: SubsetRandomSampler over the slots
            batch = next(iterators[owners[slot]], None)
            if batch is not None:
                yield self._shifted(owners[slot], batch)

    def _global_len(self) -> int:
        return sum(_sub_len(s) for s in self.batch_samplers)
