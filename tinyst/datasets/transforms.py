"""Row-wise transforms behind `Dataset.map` and `Dataset.filter`, with HF datasets' semantics.

Mirrors `Dataset.map` / `Dataset.filter` of HF `datasets/arrow_dataset.py`: the function sees a row dict
(or, batched, a dict of lists), optionally its index and only `input_columns`; map merges the returned
dict into the row (columns keep their place, new ones are appended, `remove_columns` go unless returned).
Results are written batch by batch: to an Arrow scratch file for on-disk datasets, to RAM otherwise.
Not included: num_proc, fn_kwargs, cache reuse across runs, desc/progress bars.
"""
import itertools

import pyarrow as pa

from tinyst.datasets.arrow_io import column_array, table_sink


def as_names(column_names) -> list:
    return [column_names] if isinstance(column_names, str) else list(column_names)


def _call(function, inputs, idx, input_columns, with_indices):
    args = [inputs] if input_columns is None else [inputs[c] for c in input_columns]
    return function(*args, idx) if with_indices else function(*args)


def filter_indices(ds, function, with_indices, input_columns, batched, batch_size) -> list:
    """The row indices for which `function` is truthy."""
    cols = None if input_columns is None else as_names(input_columns)
    ds._check_columns(cols or [])
    keep = []
    for start, chunk in ds._batches(batch_size if batched else 1000):
        if batched:
            flags = list(_call(function, chunk.to_pydict(), list(range(start, start + len(chunk))), cols, with_indices))
            if len(flags) != len(chunk):
                raise ValueError(f"batched filter returned {len(flags)} flags for a batch of {len(chunk)} rows")
        else:
            flags = [_call(function, row, start + i, cols, with_indices) for i, row in enumerate(chunk.to_pylist())]
        keep.extend(start + i for i, f in enumerate(flags) if f)
    return keep


def _function_output(function, start, chunk, batched, cols, with_indices) -> dict:
    """What `function` returns for this chunk, as a dict of equal-length lists."""
    if batched:
        out = _call(function, chunk.to_pydict(), list(range(start, start + len(chunk))), cols, with_indices) or {}
        if not isinstance(out, dict):
            raise TypeError(f"a batched map function must return a dict of lists, got {type(out).__name__}")
        lengths = {k: len(v) for k, v in out.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"map returned columns of different lengths: {lengths}")
        return out
    rows = [_call(function, r, start + i, cols, with_indices) or {} for i, r in enumerate(chunk.to_pylist())]
    if not all(isinstance(r, dict) for r in rows):
        raise TypeError("a map function must return a dict (or None) per row")
    keys = list(rows[0]) if rows else []
    if any(set(r) != set(keys) for r in rows):
        raise ValueError(f"map returned different keys for different rows; the first row gave {keys}")
    return {k: [r[k] for r in rows] for k in keys}


def _merge(chunk: pa.Table, out: dict, remove: list) -> pa.RecordBatch:
    n, m = len(chunk), len(next(iter(out.values()))) if out else len(chunk)
    kept = [c for c in chunk.column_names if c not in out and c not in remove]
    if m != n and kept:
        raise ValueError(f"map changed the number of rows ({n} -> {m}) but kept input columns {kept}: "
                         "remove them with remove_columns=")
    names = [c for c in chunk.column_names if c in out or c not in remove] + [k for k in out if k not in chunk.column_names]
    table = pa.table([column_array(c, out[c]) if c in out else chunk.column(c) for c in names], names=names)
    return table.combine_chunks().to_batches()[0] if table.num_rows else pa.RecordBatch.from_pylist([], schema=table.schema)


def map_table(ds, function, with_indices, input_columns, batched, batch_size, remove_columns) -> pa.Table:
    """The table `ds.map(...)` returns; batches after the first are cast to the first one's types."""
    cols = None if input_columns is None else as_names(input_columns)
    remove = [] if remove_columns is None else as_names(remove_columns)
    ds._check_columns((cols or []) + remove)
    batches = (_merge(chunk, _function_output(function, start, chunk, batched, cols, with_indices), remove)
               for start, chunk in ds._batches(batch_size if batched else 1000))
    first = next(batches, None)
    if first is None:  # no rows: the columns that would survive
        return ds.data.drop_columns(remove)

    def conform(batch):
        if batch.schema.equals(first.schema):
            return batch
        try:
            return pa.Table.from_batches([batch]).cast(first.schema).to_batches()[0]
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError) as e:
            raise TypeError(f"map output types changed between batches: {first.schema} then {batch.schema} ({e})") from None

    return table_sink(itertools.chain([first], map(conform, batches)), first.schema, ds._scratch())
