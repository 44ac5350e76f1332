"""`load_dataset` with HF's semantics, over pyarrow: builders, hub-layout folders, hub ids, split strings.

Mirrors `datasets/load.py`, `datasets/data_files.py` and the csv/json/parquet/arrow packaged builders
of HF datasets. Each source file is converted once (streamed in record batches) into an Arrow IPC file
under the cache folder, keyed by path, size, mtime and reader options, then memory-mapped: a 10M-row
parquet never sits in RAM. Folders follow HF's rules: README.md `configs:` first, else
`data/{split}-00000-of-00001.*` shard names, else split keywords in folder/file names, else all "train".
Known difference: csv is read by pyarrow, not pandas (an int column with empty cells stays int64 with
nulls where HF gives float64).
Not included: loading scripts, remote URLs in data_files, streaming, text/imagefolder builders, download_mode.
"""
import csv
import glob
import hashlib
import json
import os
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from tinyst.datasets.arrow_io import cache_root, read_arrow, write_arrow
from tinyst.datasets.dataset import Dataset, table_from_columns
from tinyst.datasets.dataset_dict import DatasetDict
from tinyst.datasets.splits import parse_split, resolve_split

BUILDERS = ("csv", "json", "parquet", "arrow")
OPTIONS = {"csv": {"sep", "delimiter", "column_names", "quotechar", "quoting"}, "json": {"field"}, "parquet": set(), "arrow": set()}
_EXTENSIONS = {".csv": ("csv", {}), ".tsv": ("csv", {"sep": "\t"}), ".json": ("json", {}), ".jsonl": ("json", {}),
               ".parquet": ("parquet", {}), ".arrow": ("arrow", {})}
_COMPRESSED = (".gz", ".bz2", ".zst", ".lz4")
SPLIT_KEYWORDS = {"train": ("train", "training"), "validation": ("validation", "valid", "dev", "val"),
                  "test": ("test", "testing", "eval", "evaluation")}
_SEP = "[-._ 0-9]"  # characters that may separate a split keyword from the rest of a name (HF's NON_WORDS_CHARS)
_SHARD = re.compile(r"(?:data/)?(\w+(?:\.\w+)*)-\d{5}-of-\d{5}[^/]*\.[^/]*")
BATCH_ROWS = 65_536  # rows per record batch when converting: bounds the RAM used by a conversion
BLOCK_BYTES = 16 << 20  # csv/json reader block; types are inferred on the first block (whole-file retry on a clash)


# ---- reading one file into the Arrow cache ----
def _module(path: Path):
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in _COMPRESSED:
        suffixes = suffixes[:-1]
    return _EXTENSIONS.get(suffixes[-1]) if suffixes else None


def _stream(path: Path):
    return pa.input_stream(str(path), compression="detect")  # .gz/.bz2/.zst/.lz4 by extension


def _csv(path: Path, opts: dict, whole: bool):
    quote = False if opts.get("quoting") == csv.QUOTE_NONE else opts.get("quotechar", '"')
    parse = pacsv.ParseOptions(delimiter=opts.get("sep", opts.get("delimiter", ",")), quote_char=quote)
    read = pacsv.ReadOptions(column_names=opts.get("column_names"), block_size=BLOCK_BYTES)
    # pandas (HF's csv reader) turns empty cells and "NA"-like strings into missing values; so do we.
    null_values = pacsv.ConvertOptions().null_values + ["<NA>", "None"]
    convert = pacsv.ConvertOptions(strings_can_be_null=True, quoted_strings_can_be_null=True, null_values=null_values)
    if whole:
        table = pacsv.read_csv(_stream(path), read, parse, convert)
        return table.schema, table.to_batches(BATCH_ROWS)
    reader = pacsv.open_csv(_stream(path), read, parse, convert)
    return reader.schema, reader


def _json(path: Path, opts: dict, whole: bool):
    with _stream(path) as f:
        first_line = f.read(1 << 20).lstrip().split(b"\n", 1)[0]
    try:  # JSON Lines when the first line alone is an object; else a JSON document (array of rows / columns)
        lines = isinstance(json.loads(first_line), dict) and opts.get("field") is None
    except ValueError:
        lines = False
    if not lines:
        with _stream(path) as f:
            data = json.loads(f.read())  # a JSON document is parsed whole, as HF does
        if opts.get("field") is not None:
            if not isinstance(data, dict) or opts["field"] not in data:
                raise ValueError(f"{path} has no top-level field {opts['field']!r}")
            data = data[opts["field"]]
        if isinstance(data, list) and all(isinstance(r, dict) for r in data):
            data = {k: [r.get(k) for r in data] for k in dict.fromkeys(k for r in data for k in r)}
        if not isinstance(data, dict):
            raise ValueError(f"{path} must hold JSON Lines, a JSON array of objects, or an object of columns")
        table = table_from_columns(data)
        return table.schema, table.to_batches(BATCH_ROWS)
    if whole:
        table = pajson.read_json(_stream(path))
        return table.schema, table.to_batches(BATCH_ROWS)
    reader = pajson.open_json(_stream(path), read_options=pajson.ReadOptions(block_size=BLOCK_BYTES))
    return reader.schema, reader


def _parquet(path: Path, opts: dict, whole: bool):
    pf = pq.ParquetFile(str(path), pre_buffer=False, buffer_size=1 << 20)  # read pages as needed, not whole row groups
    return pf.schema_arrow, pf.iter_batches(batch_size=BATCH_ROWS)


_READERS = {"csv": _csv, "json": _json, "parquet": _parquet}


def _read_file(builder: str, path: Path, opts: dict, root: Path) -> pa.Table:
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
                write_arrow(*_READERS[builder](path, opts, whole=False)[::-1], target)
            except pa.ArrowInvalid:  # a later block disagreed with the first block's types: infer on the whole file
                write_arrow(*_READERS[builder](path, opts, whole=True)[::-1], target)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
            kind = TypeError if "changed from" in str(e) or "mixes" in str(e) else ValueError
            raise kind(f"could not read {path} as {builder}: {e}") from None
        except json.JSONDecodeError as e:
            raise ValueError(f"could not read {path} as json: {e}") from None
        pa.default_memory_pool().release_unused()  # hand the conversion's buffers back to the OS
    return read_arrow(target)


def _read_split(name: str, files: list, opts: dict, root: Path, builder=None) -> pa.Table:
    tables = []
    for path in files:
        b, defaults = (builder, {}) if builder else _module(path)
        tables.append(_read_file(b, path, {**defaults, **opts} if b != "arrow" else opts, root))
    try:
        return tables[0] if len(tables) == 1 else pa.concat_tables(tables, promote_options="default")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
        raise ValueError(f"the files of split {name!r} do not share columns and types: {e}") from None


# ---- which files make which split ----
def _resolve(patterns, base: Path) -> list:
    out = []
    for pattern in [patterns] if isinstance(patterns, (str, os.PathLike)) else list(patterns):
        full = Path(os.fspath(pattern)).expanduser()
        full = full if full.is_absolute() else base / full
        if glob.has_magic(str(full)):
            matches = sorted(Path(m) for m in glob.glob(str(full), recursive=True) if Path(m).is_file())
        else:
            matches = [full] if full.is_file() else []
        if not matches:
            raise FileNotFoundError(f"no data file matches {os.fspath(pattern)!r} (looked in {base})")
        out.extend(matches)
    return out


def _split_files(data_files, base: Path) -> dict:
    if isinstance(data_files, (str, os.PathLike, list, tuple)):
        data_files = {"train": data_files}
    if not isinstance(data_files, dict) or not data_files:
        raise TypeError(f"data_files must be a path, a list of paths or a dict split -> path(s), got {data_files!r}")
    return {str(split): _resolve(p, base) for split, p in data_files.items()}


def _data_files_in(base: Path, builder=None, exclude=()) -> list:
    files = [p for p in sorted(base.rglob("*")) if p.is_file() and _module(p) and p.relative_to(base).parts[0] not in exclude
             and not any(part.startswith(".") for part in p.relative_to(base).parts)]
    return [p for p in files if builder is None or _module(p)[0] == builder]


def _infer_splits(base: Path, builder=None, exclude=()) -> dict:
    """HF's default split inference over the data files below `base` (minus the `exclude` subfolders)."""
    files = _data_files_in(base, builder, exclude)
    if not files:
        raise FileNotFoundError(f"no csv/json/parquet/arrow data files found in {base}")
    if builder is None:  # a folder holds one format: keep the most common one, as HF does
        counts = {}
        for p in files:
            counts[_module(p)[0]] = counts.get(_module(p)[0], 0) + 1
        files = [p for p in files if _module(p)[0] == max(counts, key=counts.get)]
    rel = {p: p.relative_to(base).as_posix() for p in files}
    shards = {}  # "data/{split}-00000-of-00001.parquet": split names taken literally (a subset folder counts as data/)
    for p, r in rel.items():
        if m := _SHARD.fullmatch(r):
            shards.setdefault(m[1], []).append(p)
    if shards:
        order = [s for s in SPLIT_KEYWORDS if s in shards] + sorted(set(shards) - set(SPLIT_KEYWORDS))
        return {s: shards[s] for s in order}
    for in_dir in (True, False):  # split keyword as a folder name first, then inside a file name
        found = {}
        for split, words in SPLIT_KEYWORDS.items():
            pat = re.compile(rf"(?:^|.*{_SEP})(?:{'|'.join(words)})" + (rf"(?:{_SEP}.*)?$" if in_dir else rf"{_SEP}.*$"))
            hits = [p for p, r in rel.items() if any(pat.match(n) for n in (r.split("/")[:-1] if in_dir else [p.name]))]
            if hits:
                found[split] = hits
        if found:
            return found
    return {"train": files}


def _yaml(lines: list, i: int, indent: int):
    """Parse the block-style YAML subset of README `configs:` (maps, lists, scalars) -> (value, next line)."""
    seq = lines[i][1].startswith("- ")
    out = [] if seq else {}
    while i < len(lines) and lines[i][0] == indent and lines[i][1].startswith("- ") == seq:
        text = lines[i][1][2:].strip() if seq else lines[i][1]
        if seq and ":" not in text.split(" #")[0].replace("://", ""):
            out.append(_scalar(text))
            i += 1
            continue
        if seq:  # "- key: value" opens a map whose keys sit 2 columns deeper
            lines[i] = (indent + 2, text)
            value, i = _yaml(lines, i, indent + 2)
            out.append(value)
            continue
        key, _, rest = text.partition(":")
        i += 1
        if rest.strip():
            out[key.strip()] = _scalar(rest.strip())
        elif i < len(lines) and (lines[i][0] > indent or lines[i][1].startswith("- ")):
            out[key.strip()], i = _yaml(lines, i, lines[i][0])
        else:
            out[key.strip()] = None
    return out, i


def _scalar(text: str):
    text = text.strip()
    if text.startswith("[") and text.endswith("]"):
        return [_scalar(t) for t in text[1:-1].split(",") if t.strip()]
    if text[:1] in "'\"" and text[-1:] == text[:1]:
        return text[1:-1]
    return {"true": True, "false": False}.get(text.lower(), text)


def _readme_configs(folder: Path) -> list:
    readme = folder / "README.md"
    if not readme.is_file():
        return []
    text = readme.read_text(encoding="utf-8", errors="replace")
    m = re.match(r"---\s*\n(.*?)\n---", text, re.S)
    lines = [(len(ln) - len(ln.lstrip()), ln.strip()) for ln in (m[1].splitlines() if m else []) if ln.strip()]
    start = next((i for i, (ind, t) in enumerate(lines) if ind == 0 and t == "configs:"), None)
    if start is None or start + 1 >= len(lines):
        return []
    configs, _ = _yaml(lines, start + 1, lines[start + 1][0])
    if not isinstance(configs, list) or not all(isinstance(c, dict) for c in configs):
        raise ValueError(f"{readme}: could not read its `configs:` block")
    return configs


def _folder_splits(folder: Path, name, data_dir) -> dict:
    """Split -> files for a dataset folder (a local copy of a hub repo), by subset `name`."""
    configs = _readme_configs(folder)
    if configs:
        names = [c.get("config_name", "default") for c in configs]
        if name is None:
            chosen = [c for c in configs if c.get("default")] or (configs if len(configs) == 1 else [])
            if not chosen:
                raise ValueError(f"{folder} has several subsets {names}: pick one with name=, e.g. name={names[0]!r}")
        else:
            chosen = [c for c, n in zip(configs, names) if n == name]
            if not chosen:
                raise ValueError(f"unknown subset {name!r} in {folder}; available subsets: {names}")
        cfg = chosen[0]
        base = folder / (cfg.get("data_dir") or data_dir or "")
        files = cfg.get("data_files")
        if files is None:
            return _infer_splits(base)
        if isinstance(files, list) and files and all(isinstance(f, dict) for f in files):
            files = {f.get("split", "train"): f.get("path") for f in files}
        return _split_files(files, base)
    base = folder / data_dir if data_dir else folder
    if not base.is_dir():
        raise FileNotFoundError(f"data_dir {data_dir!r} not found in {folder}")
    split_words = {w for words in SPLIT_KEYWORDS.values() for w in words} | {"data"}
    subsets = sorted(d.name for d in base.iterdir() if d.is_dir() and not d.name.startswith(".")
                     and d.name not in split_words and _data_files_in(d))
    if name is not None and name != "default":
        if name not in subsets:
            raise ValueError(f"unknown subset {name!r} in {folder}; available subsets: {subsets}")
        return _infer_splits(base / name)
    if subsets and not _data_files_in(base, exclude=subsets):
        raise ValueError(f"{folder} has several subsets {subsets}: pick one with name=, e.g. name={subsets[0]!r}")
    return _infer_splits(base, exclude=subsets)  # files beside the subset folders form the default subset


# ---- the public entry points ----
def load_dataset(path, name=None, data_dir=None, data_files=None, split=None, cache_dir=None, revision=None,
                 streaming=False, **reader_options):
    """HF's `datasets.load_dataset`: a builder name ("csv", "json", "parquet", "arrow") with data_files or
    data_dir, a local file or dataset folder, or a hub id "org/name". No split -> DatasetDict; a split
    string ("train[:10%]+test") -> Dataset; a list of split strings -> list of Datasets."""
    if streaming:
        raise ValueError("streaming=True is not supported: tinyst memory-maps datasets instead (same RAM benefit)")
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or path, got {type(path).__name__}")
    spec, builder = os.fspath(path), None
    local = Path(spec).expanduser()
    if spec in BUILDERS:
        builder = spec
        if data_files is None and data_dir is None:
            raise ValueError(f"the {spec!r} builder needs data_files= (a path, a list, or a dict of splits) or data_dir=")
        base = Path(data_dir).expanduser() if data_dir else Path.cwd()
        files = _split_files(data_files, base) if data_files is not None else _infer_splits(base, builder)
    elif local.is_file():
        if _module(local) is None:
            raise ValueError(f"cannot tell the format of {spec}: expected one of {sorted(_EXTENSIONS)}")
        files = _split_files(data_files or str(local), Path.cwd())
    else:
        if not local.is_dir():
            if not re.fullmatch(r"[\w-][\w.-]*/[\w.-]+", spec):
                if "/" in spec or os.sep in spec or spec.startswith((".", "~")):
                    raise FileNotFoundError(f"no such file or folder: {spec}")
                raise ValueError(f"unknown builder {spec!r}: expected one of {list(BUILDERS)}, a local file or "
                                 "folder, or a hub dataset id 'org/name'")
            from tinyst.hub import snapshot_download

            local = snapshot_download(spec, repo_type="dataset", revision=revision)
        files = _split_files(data_files, local) if data_files is not None else _folder_splits(local, name, data_dir)
    root = cache_root(cache_dir)
    cache = {}

    def table(s):
        if s not in cache:
            cache[s] = _read_split(s, files[s], reader_options, root, builder)
        return cache[s]

    if split is None:
        return DatasetDict({s: Dataset(table(s), root, split=s) for s in files})
    if isinstance(split, (list, tuple)):
        return [load_dataset(path, name, data_dir, data_files, s, cache_dir, revision, **reader_options) for s in split]
    parts = parse_split(split)
    unknown = [p[0] for p in parts if p[0] not in files]
    if unknown:
        raise ValueError(f"unknown split {unknown[0]!r}: available splits are {list(files)}")
    ranges = resolve_split(parts, {p[0]: table(p[0]).num_rows for p in parts})
    pieces = [table(s).slice(a, b - a) for s, a, b in ranges]
    try:
        out = pieces[0] if len(pieces) == 1 else pa.concat_tables(pieces, promote_options="default")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
        raise ValueError(f"splits in {split!r} do not share columns and types: {e}") from None
    return Dataset(out, root, split=split)


def load_from_disk(dataset_path, cache_dir=None):
    """A Dataset or DatasetDict saved by `save_to_disk` (tinyst's or HF's)."""
    folder = Path(dataset_path)
    if (folder / "dataset_dict.json").is_file():
        return DatasetDict.load_from_disk(folder, cache_dir)
    if (folder / "state.json").is_file():
        return Dataset.load_from_disk(folder, cache_dir)
    raise FileNotFoundError(f"{folder} holds neither a saved Dataset (state.json) nor a DatasetDict (dataset_dict.json)")
