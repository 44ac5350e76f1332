"""`Dataset`: named columns in a pyarrow Table, with the HF `datasets.Dataset` calls that ST code uses.

Mirrors `datasets/arrow_dataset.py` (HF datasets 2.x-5.x) in behaviour, not in code: a dataset is an
immutable `pa.Table` (`.data`); every operation returns a new Dataset. Tables loaded from disk are
memory-mapped; derived tables (`map`, large `select`/`shuffle`) go to an Arrow scratch file when the
source was on disk, so RAM stays flat. `select` materialises the rows (no lazy indices mapping), so
`.data` always holds exactly the visible rows; contiguous ranges are zero-copy slices.
Not included: Features/ClassLabel types, set_format/with_format, fingerprints and cache reuse,
num_proc, sort, cast, concatenate_datasets, IterableDataset/streaming.
"""
import json
import uuid
from math import ceil, floor
from pathlib import Path

import numpy as np
import pyarrow as pa

from tinyst.datasets.arrow_io import (SMALL_BYTES, cache_root, column_array, read_arrow, release_pages, replace_dir,
                                     scratch_dir, table_from_columns, table_sink, write_arrow)
from tinyst.datasets.transforms import as_names, filter_indices, map_table

ROWS_PER_BATCH = 1000  # HF's default batch size for map / filter / writing
RELEASE_ROWS = 65_536  # sequential passes drop the mapped pages behind them every this many rows


def _rng(seed, generator) -> np.random.Generator:
    if generator is not None:
        if not isinstance(generator, np.random.Generator):
            raise TypeError(f"generator must be a numpy.random.Generator, got {type(generator).__name__}")
        return generator
    if seed is None:  # as HF: draw the seed from NumPy's global state, so np.random.seed() makes runs repeatable
        _, keys, pos, *_ = np.random.get_state()
        seed = int(keys[pos] if pos < 624 else keys[0])
        np.random.random()
    return np.random.default_rng(seed)


class Dataset:
    def __init__(self, table: pa.Table, cache_dir=None, split=None):
        if not isinstance(table, pa.Table):
            raise TypeError(f"Dataset wraps a pyarrow.Table, got {type(table).__name__}")
        self._table = table
        self._cache_dir = cache_dir  # None: in-memory dataset, derived tables stay in RAM
        self.split = split

    @classmethod
    def from_dict(cls, mapping: dict, split=None) -> "Dataset":
        return cls(table_from_columns(mapping), split=split)

    @classmethod
    def from_list(cls, rows: list, split=None) -> "Dataset":
        if not isinstance(rows, (list, tuple)) or not all(isinstance(r, dict) for r in rows):
            raise TypeError("from_list expects a list of dicts (one per row)")
        keys = list(rows[0]) if rows else []  # as HF: the first row names the columns
        return cls.from_dict({k: [r.get(k) for r in rows] for k in keys}, split=split)

    def _new(self, table: pa.Table) -> "Dataset":
        return Dataset(table, self._cache_dir, self.split)

    def _scratch(self):
        return scratch_dir(self._cache_dir) if self._cache_dir is not None else None

    # ---- shape and access ----
    data = property(lambda self: self._table, doc="The underlying pyarrow.Table (zero-copy; memory-mapped if from disk).")
    column_names = property(lambda self: self._table.column_names)
    num_rows = property(lambda self: self._table.num_rows)
    num_columns = property(lambda self: self._table.num_columns)
    shape = property(lambda self: (self._table.num_rows, self._table.num_columns))

    def __len__(self) -> int:
        return self._table.num_rows

    def __repr__(self) -> str:
        return f"Dataset({{\n    features: {self.column_names},\n    num_rows: {self.num_rows}\n}})"

    def _check_columns(self, names) -> None:
        missing = [c for c in names if c not in self.column_names]
        if missing:
            raise ValueError(f"column(s) {missing} not in the dataset; its columns are {self.column_names}")

    def _indices(self, indices) -> np.ndarray:
        idx = np.asarray(list(indices) if isinstance(indices, (range, tuple)) else indices)
        if idx.size == 0:
            return idx.astype(np.int64)
        if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer):
            raise TypeError(f"indices must be a 1-D sequence of integers, got dtype {idx.dtype} shape {idx.shape}")
        if idx.min() < 0 or idx.max() >= len(self):
            raise IndexError(f"indices out of range [0, {len(self)}): min {idx.min()}, max {idx.max()}")
        return idx.astype(np.int64)

    def __getitem__(self, key):
        """str -> column as a list; int -> row dict; slice or list of ints -> dict of lists."""
        if isinstance(key, str):
            self._check_columns([key])
            return self._table.column(key).to_pylist()
        if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
            i = int(key) + (len(self) if key < 0 else 0)
            if not 0 <= i < len(self):
                raise IndexError(f"row index {key} out of range for a dataset of {len(self)} rows")
            return self._table.slice(i, 1).to_pylist()[0]
        if isinstance(key, slice):
            start, stop, step = key.indices(len(self))
            if step == 1:
                return self._table.slice(start, max(stop - start, 0)).to_pydict()
            key = range(start, stop, step)
        if isinstance(key, (list, tuple, range, np.ndarray)):
            return self._table.take(self._indices(key)).to_pydict()
        raise TypeError(f"dataset index must be str, int, slice or list of ints, got {type(key).__name__}")

    def __iter__(self):
        for _, chunk in self._batches(ROWS_PER_BATCH):
            yield from chunk.to_pylist()

    def iter(self, batch_size: int, drop_last_batch: bool = False):
        """Yield dicts of lists of `batch_size` rows (HF `Dataset.iter`)."""
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        for start, chunk in self._batches(batch_size):
            if drop_last_batch and start + batch_size > len(self):
                return
            yield chunk.to_pydict()

    def to_list(self) -> list:
        return self._table.to_pylist()

    def to_dict(self) -> dict:
        return self._table.to_pydict()

    def unique(self, column: str) -> list:
        self._check_columns([column])
        import pyarrow.compute as pc  # lazily: ~0.1 s of import time

        return pc.unique(self._table.column(column)).to_pylist()  # order of first appearance, as HF

    # ---- columns ----
    def select_columns(self, column_names) -> "Dataset":
        names = as_names(column_names)
        self._check_columns(names)
        return self._new(self._table.select(names))  # keeps the order given

    def remove_columns(self, column_names) -> "Dataset":
        names = as_names(column_names)
        self._check_columns(names)
        return self._new(self._table.drop_columns(names))

    def rename_column(self, original_column_name: str, new_column_name: str) -> "Dataset":
        return self.rename_columns({original_column_name: new_column_name})

    def rename_columns(self, column_mapping: dict) -> "Dataset":
        self._check_columns(list(column_mapping))
        new = [column_mapping.get(c, c) for c in self.column_names]
        if len(set(new)) != len(new) or not all(isinstance(c, str) and c for c in new):
            raise ValueError(f"renaming gives duplicate or empty column names: {new}")
        return self._new(self._table.rename_columns(new))

    def add_column(self, name: str, column) -> "Dataset":
        if name in self.column_names:
            raise ValueError(f"column {name!r} already exists; columns are {self.column_names}")
        if len(column) != len(self):
            raise ValueError(f"column {name!r} has {len(column)} values but the dataset has {len(self)} rows")
        return self._new(self._table.append_column(name, column_array(name, column)))

    # ---- rows ----
    def select(self, indices) -> "Dataset":
        """The rows at `indices`, in that order. Contiguous ranges are zero-copy slices."""
        if isinstance(indices, range) and indices.step == 1 and 0 <= indices.start <= indices.stop <= len(self):
            return self._new(self._table.slice(indices.start, len(indices)))
        idx = self._indices(indices)
        scratch = self._scratch()
        if scratch is None or self._table.nbytes * len(idx) <= SMALL_BYTES * max(len(self), 1):
            return self._new(self._table.take(idx))
        def chunks(step=65_536):  # a large selection of an on-disk table: stream it into a scratch file
            for i in range(0, len(idx), step):
                release_pages()  # random reads touch pages all over the source: drop them as we go
                yield from self._table.take(idx[i : i + step]).to_batches()

        return self._new(table_sink(chunks(), self._table.schema, scratch))

    def shuffle(self, seed=None, generator=None) -> "Dataset":
        """Rows in the order of `np.random.default_rng(seed).permutation(n)`, as HF (same seed, same order)."""
        return self.select(_rng(seed, generator).permutation(len(self)))

    def train_test_split(self, test_size=None, train_size=None, shuffle=True, seed=None, generator=None):
        """A DatasetDict {"train", "test"} with HF's sizes (test rounds up, train down) and permutation."""
        from tinyst.datasets.dataset_dict import DatasetDict

        n = len(self)
        test_size = 0.25 if test_size is None and train_size is None else test_size
        for arg, v in (("test_size", test_size), ("train_size", train_size)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))
                                  or (isinstance(v, int) and not 0 < v < n) or (isinstance(v, float) and not 0 < v < 1)):
                raise ValueError(f"{arg}={v!r} must be an int in (0, {n}) or a float in (0, 1)")
        n_test = None if test_size is None else (ceil(test_size * n) if isinstance(test_size, float) else test_size)
        n_train = None if train_size is None else (floor(train_size * n) if isinstance(train_size, float) else train_size)
        n_train = n - n_test if n_train is None else n_train
        n_test = n - n_train if n_test is None else n_test
        if n_train + n_test > n or n_train == 0:
            raise ValueError(f"train_size={train_size}, test_size={test_size} give {n_train} train + {n_test} test rows "
                             f"out of {n}: need 0 < train and train + test <= {n}")
        order = _rng(seed, generator).permutation(n) if shuffle else np.arange(n)
        if shuffle:  # HF: test takes the head of the permutation, train what follows
            test, train = order[:n_test], order[n_test : n_test + n_train]
        else:
            train, test = order[:n_train], order[n_train : n_train + n_test]
        return DatasetDict({"train": self.select(train), "test": self.select(test)})

    def _batches(self, batch_size):
        """(start, table slice) over the rows in order; drops the mapped pages behind it so RSS stays flat."""
        every = max(1, RELEASE_ROWS // batch_size)
        for k, start in enumerate(range(0, len(self), batch_size)):
            if k % every == every - 1 and self._cache_dir is not None:
                release_pages()
            yield start, self._table.slice(start, batch_size)

    def filter(self, function, with_indices=False, input_columns=None, batched=False, batch_size=ROWS_PER_BATCH):
        """Keep the rows for which `function` is truthy (a list of bools per batch when `batched`)."""
        return self.select(filter_indices(self, function, with_indices, input_columns, batched, batch_size))

    def map(self, function=None, with_indices=False, input_columns=None, batched=False, batch_size=ROWS_PER_BATCH,
            remove_columns=None):
        """Apply `function` to rows (or dict-of-lists batches); returned keys update or add columns (HF's merge).
        On-disk datasets get the result as an Arrow scratch file; see transforms.py."""
        if function is None:
            return self
        return self._new(map_table(self, function, with_indices, input_columns, batched, batch_size, remove_columns))

    # ---- disk ----
    def save_to_disk(self, dataset_path) -> None:
        """Write HF's layout (data-00000-of-00001.arrow, state.json, dataset_info.json); HF can load it."""
        replace_dir(dataset_path, self._write_dir)

    def _write_dir(self, folder: Path) -> None:
        name = "data-00000-of-00001.arrow"
        write_arrow((chunk for _, chunk in self._batches(ROWS_PER_BATCH)), self._table.schema, folder / name, stream=True)
        state = {"_data_files": [{"filename": name}], "_fingerprint": uuid.uuid4().hex[:16], "_format_columns": None,
                 "_format_kwargs": {}, "_format_type": None, "_output_all_columns": False, "_split": self.split}
        (folder / "state.json").write_text(json.dumps(state, indent=2))
        (folder / "dataset_info.json").write_text(json.dumps({}))

    @staticmethod
    def load_from_disk(dataset_path, cache_dir=None) -> "Dataset":
        folder = Path(dataset_path)
        if not (folder / "state.json").is_file():
            raise FileNotFoundError(f"{folder} is not a saved Dataset (no state.json)")
        state = json.loads((folder / "state.json").read_text())
        files = [f["filename"] for f in state.get("_data_files", [])]
        if not files or any(Path(f).is_absolute() or ".." in Path(f).parts for f in files):
            raise ValueError(f"{folder}/state.json lists no data files or unsafe paths: {files}")
        table = pa.concat_tables([read_arrow(folder / f) for f in files])
        return Dataset(table, cache_root(cache_dir), split=state.get("_split"))

