"""Data files -> memory-mapped Arrow tables: the csv, json, parquet and arrow builders of HF datasets.

Mirrors `datasets/packaged_modules/{csv,json,parquet,arrow}`. Each source file is converted once,
streamed in record batches, into an Arrow IPC file under the cache folder, keyed by path, size, mtime
and reader options, then memory-mapped: a 10M-row parquet never sits in RAM. csv/json infer types on
their first block and retry on the whole file when a later block disagrees.
Known difference: csv is read by pyarrow, not pandas (an int column with empty cells stays int64 with
nulls where HF gives float64); a json column mixing numbers and strings is an error, not HF 5's Json type.
Not included: text/imagefolder/audiofolder builders, pandas-only csv options, URLs.
"""
import csv
import hashlib
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson

from tinyst.datasets.arrow_io import read_arrow, table_from_columns, write_arrow

OPTIONS = {"csv": {"sep", "delimiter", "column_names", "quotechar", "quoting"}, "json": {"field"}, "parquet": set(),
           "arrow": set()}
EXTENSIONS = {".csv": ("csv", {}), ".tsv": ("csv", {"sep": "\t"}), ".json": ("json", {}), ".jsonl": ("json", {}),
              ".parquet": ("parquet", {}), ".arrow": ("arrow", {})}
COMPRESSED = (".gz", ".bz2", ".zst", ".lz4")  # read through transparently, by extension
BATCH_ROWS = 65_536  # rows per record batch when converting: bounds the RAM a conversion uses
BLOCK_BYTES = 16 << 20  # csv/json reader block size


def format_of(path: Path):
    """(builder, default options) for a data file name, or None ("train.jsonl.gz" -> json)."""
    suffixes = [s.lower() for s in Path(path).suffixes]
    suffixes = suffixes[:-1] if suffixes and suffixes[-1] in COMPRESSED else suffixes
    return EXTENSIONS.get(suffixes[-1]) if suffixes else None


def _stream(path: Path):
    return pa.input_stream(str(path), compression="detect")


def _whole(table: pa.Table):
    return table.to_batches(BATCH_ROWS), table.schema


def _csv(path: Path, opts: dict, whole: bool):
    quote = False if opts.get("quoting") == csv.QUOTE_NONE else opts.get("quotechar", '"')
    parse = pacsv.ParseOptions(delimiter=opts.get("sep", opts.get("delimiter", ",")), quote_char=quote)
    read = pacsv.ReadOptions(column_names=opts.get("column_names"), block_size=BLOCK_BYTES)
    # pandas (HF's csv reader) turns empty cells and "NA"-like strings into missing values; so do we.
    null_values = pacsv.ConvertOptions().null_values + ["<NA>", "None"]
    convert = pacsv.ConvertOptions(strings_can_be_null=True, quoted_strings_can_be_null=True, null_values=null_values)
    if whole:
        return _whole(pacsv.read_csv(_stream(path), read, parse, convert))
    reader = pacsv.open_csv(_stream(path), read, parse, convert)
    return reader, reader.schema


def _json(path: Path, opts: dict, whole: bool):
    with _stream(path) as f:
        first_line = f.read(1 << 20).lstrip().split(b"\n", 1)[0]
    try:  # JSON Lines when the first line alone is an object; else one JSON document (rows or columns)
        lines = isinstance(json.loads(first_line), dict) and opts.get("field") is None
    except ValueError:
        lines = False
    if lines:
        if whole:
            return _whole(pajson.read_json(_stream(path)))
        reader = pajson.open_json(_stream(path), read_options=pajson.ReadOptions(block_size=BLOCK_BYTES))
        return reader, reader.schema
    with _stream(path) as f:
        data = json.loads(f.read())  # a JSON document is parsed whole, as HF does
    field = opts.get("field")
    if field is not None:
        if not isinstance(data, dict) or field not in data:
            raise ValueError(f"{path} has no top-level field {field!r}")
        data = data[field]
    if isinstance(data, list) and all(isinstance(r, dict) for r in data):  # rows -> columns, keys in order of appearance
        data = {k: [r.get(k) for r in data] for k in dict.fromkeys(k for r in data for k in r)}
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold JSON Lines, a JSON array of objects, or an object of columns")
    return _whole(table_from_columns(data))


def _parquet(path: Path, opts: dict, whole: bool):
    import pyarrow.parquet as pq  # here, not at the top: its import alone is ~75 ms of `import tinyst`

    pf = pq.ParquetFile(str(path), pre_buffer=False, buffer_size=1 << 20)  # read pages as needed, not whole row groups
    return pf.iter_batches(batch_size=BATCH_ROWS), pf.schema_arrow


_READERS = {"csv": _csv, "json": _json, "parquet": _parquet}


def read_file(builder: str, path: Path, opts: dict, root: Path) -> pa.Table:
    """One data file as a memory-mapped table, converted into `root` on first use."""
    bad = set(opts) - OPTIONS[builder]
    if bad:
        raise TypeError(f"unknown option(s) {sorted(bad)} for the {builder!r} builder; it takes {sorted(OPTIONS[builder])}")
    if builder == "arrow":
        return read_arrow(path)  # already Arrow: map it where it lies
    st = path.stat()
    if st.st_size == 0:
        raise ValueError(f"data file {path} is empty: no columns or rows to read")
    key = json.dumps([builder, str(path.resolve()), st.st_size, st.st_mtime_ns, sorted(opts.items())], default=str)
    target = root / f"{builder}-{hashlib.sha256(key.encode()).hexdigest()[:24]}.arrow"
    if not target.is_file():
        try:
            try:
                write_arrow(*_READERS[builder](path, opts, whole=False), target)
            except pa.ArrowInvalid:  # a later block disagreed with the first block's types: infer on the whole file
                write_arrow(*_READERS[builder](path, opts, whole=True), target)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError) as e:
            kind = TypeError if "changed from" in str(e) or "mixes" in str(e) else ValueError
            raise kind(f"could not read {path} as {builder}: {e}") from None
        except json.JSONDecodeError as e:
            raise ValueError(f"could not read {path} as json: {e}") from None
        pa.default_memory_pool().release_unused()  # hand the conversion's buffers back to the OS
    return read_arrow(target)


def read_split(name: str, files: list, opts: dict, root: Path, builder=None, config_opts=None) -> pa.Table:
    """All files of one split, concatenated in order (zero-copy). Options: the extension's defaults (.tsv: sep),
    then a README config's (those this builder takes), then the caller's."""
    tables = []
    for path in files:
        b, defaults = (builder, {}) if builder else format_of(path)
        config = {k: v for k, v in (config_opts or {}).items() if k in OPTIONS[b]}
        tables.append(read_file(b, path, {**defaults, **config, **opts}, root))
    try:
        return tables[0] if len(tables) == 1 else pa.concat_tables(tables, promote_options="default")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
        raise ValueError(f"the files of split {name!r} do not share columns and types: {e}") from None
