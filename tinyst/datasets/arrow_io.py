"""Arrow plumbing: python columns -> Arrow arrays, the cache folder, atomic IPC writes, memory-mapped reads.

Everything tinyst loads from disk ends up as an Arrow IPC file that is memory-mapped, so a table of
millions of rows costs page cache, not heap. Mirrors the role of `datasets/arrow_writer.py` and
`datasets/table.py` (MemoryMappedTable) in HF datasets.
Not included: fingerprint-keyed reuse of `map` results across runs (derived tables live in a per-process
scratch folder that is deleted at exit; `save_to_disk` keeps them).
"""
import atexit
import mmap
import os
import shutil
import tempfile
import weakref
from pathlib import Path

import pyarrow as pa

SMALL_BYTES = 64 << 20  # derived tables above this size go to a scratch file instead of RAM


def column_array(name: str, values) -> pa.Array:
    """One python column as an Arrow array, with an error naming the column when its values clash."""
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        return values
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as e:
        kinds = sorted({type(v).__name__ for v in values if v is not None})
        raise TypeError(f"column {name!r} mixes value types {kinds}: a column must hold one type ({e})") from None


def table_from_columns(columns: dict) -> pa.Table:
    if not isinstance(columns, dict):
        raise TypeError(f"expected a dict of columns, got {type(columns).__name__}")
    for k, v in columns.items():  # subtle: HF splits a bare str into characters; a column is a sequence of values
        if isinstance(v, (str, bytes, dict)) or not hasattr(v, "__len__"):
            raise TypeError(f"column {k!r} must be a list of values (one per row), got {type(v).__name__} {v!r:.40}")
    lengths = {k: len(v) for k, v in columns.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"columns have different lengths: {lengths}")
    arrays = [column_array(str(k), v) for k, v in columns.items()]
    return pa.table(arrays, names=[str(k) for k in columns]) if arrays else pa.table({})


def cache_root(cache_dir=None) -> Path:
    """Where converted files live: `cache_dir`, else $HF_DATASETS_CACHE/tinyst, else ~/.cache/tinyst/datasets."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    if os.environ.get("HF_DATASETS_CACHE"):
        return Path(os.environ["HF_DATASETS_CACHE"]).expanduser() / "tinyst"
    return Path("~/.cache/tinyst/datasets").expanduser()


_SCRATCH: dict = {}


def scratch_dir(root: Path) -> Path:
    """A folder for this process's derived tables under `root`, removed at exit (mmaps survive unlink on POSIX)."""
    root = Path(root)
    if root not in _SCRATCH or not _SCRATCH[root].is_dir():
        root.mkdir(parents=True, exist_ok=True)
        _SCRATCH[root] = Path(tempfile.mkdtemp(dir=root, prefix=f"scratch-{os.getpid()}-"))
        atexit.register(shutil.rmtree, _SCRATCH[root], True)
    return _SCRATCH[root]


_MAPS = weakref.WeakSet()  # every Arrow file this process has mapped (dropped when no table uses it)


def read_arrow(path) -> pa.Table:
    """Memory-map an Arrow IPC file (file or stream format) as a zero-copy table."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"Arrow file not found: {path}")
    with open(path, "rb") as f:
        mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)  # python's mmap: it can madvise, pyarrow's can't
    _MAPS.add(mapped)
    buf = pa.py_buffer(mapped)
    try:
        return pa.ipc.open_file(buf).read_all()
    except pa.ArrowInvalid:
        try:
            return pa.ipc.open_stream(buf).read_all()  # HF's save_to_disk writes the stream format
        except pa.ArrowInvalid as e:
            raise ValueError(f"{path} is not an Arrow IPC file: {e}") from None


def release_pages() -> None:
    """Unmap the pages a pass has touched: RSS falls back while the data stays in the page cache (a re-read is a
    minor fault). Without it a full pass over a memory-mapped file shows the whole file in RSS."""
    for mapped in list(_MAPS):
        if hasattr(mapped, "madvise") and not mapped.closed:
            mapped.madvise(mmap.MADV_DONTNEED)  # read-only shared file pages: dropping them loses nothing


def write_arrow(batches, schema: pa.Schema, path, stream: bool = False) -> Path:
    """Write record batches to `path` via a temp name + os.replace, so no half file is ever visible."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        with pa.OSFile(tmp, "wb") as sink:
            opener = pa.ipc.new_stream if stream else pa.ipc.new_file
            with opener(sink, schema) as writer:
                for batch in batches:
                    writer.write(batch)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def table_sink(batches, schema: pa.Schema, scratch: Path | None) -> pa.Table:
    """Collect batches into a table: in RAM when `scratch` is None, else an mmapped scratch file."""
    if scratch is None:
        return pa.Table.from_batches(list(batches), schema=schema)
    fd, name = tempfile.mkstemp(dir=scratch, suffix=".arrow")
    os.close(fd)
    return read_arrow(write_arrow(batches, schema, name))


def replace_dir(path, fill) -> None:
    """Build a folder with `fill(tmp_folder)`, then swap it in for `path` whole (old mmaps stay valid)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise FileExistsError(f"{path} exists and is not a folder")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.tmp-"))
    try:
        fill(tmp)
        if path.exists():
            old = tmp.with_name(tmp.name + "-old")
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
