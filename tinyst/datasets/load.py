"""`load_dataset` / `load_from_disk` with HF's semantics: builders, dataset folders, hub ids, split strings.

Mirrors `datasets/load.py` (HF datasets): `path` is a builder ("csv", "json", "parquet", "arrow") with
`data_files` / `data_dir`, a data file, a dataset folder in the hub layout, or a hub id "org/name"
(found in the HF cache, else downloaded by tinyst/hub.py). Files -> splits: data_files.py; files ->
memory-mapped tables: readers.py; split strings: splits.py.
Not included: loading scripts, streaming, download_mode / verification_mode, num_proc, URLs in data_files.
"""
import os
import re
from pathlib import Path

import pyarrow as pa

from tinyst.datasets.arrow_io import cache_root
from tinyst.datasets.data_files import folder_splits, infer_splits, split_files
from tinyst.datasets.dataset import Dataset
from tinyst.datasets.dataset_dict import DatasetDict
from tinyst.datasets.readers import EXTENSIONS, format_of, read_split
from tinyst.datasets.splits import parse_split, resolve_split

BUILDERS = ("csv", "json", "parquet", "arrow")


def _locate(spec: str, name, data_dir, data_files, revision):
    """(builder or None, {split: [files]}, README reader options) for what `path` names."""
    local = Path(spec).expanduser()
    if spec in BUILDERS:
        if data_files is None and data_dir is None:
            raise ValueError(f"the {spec!r} builder needs data_files= (a path, a list, or a dict of splits) or data_dir=")
        base = Path(data_dir).expanduser() if data_dir else Path.cwd()
        return spec, split_files(data_files, base) if data_files is not None else infer_splits(base, spec), {}
    if local.is_file():
        if format_of(local) is None:
            raise ValueError(f"cannot tell the format of {spec}: expected one of {sorted(EXTENSIONS)}")
        return None, split_files(data_files or str(local), Path.cwd()), {}
    if not local.is_dir():
        if not re.fullmatch(r"[\w-][\w.-]*/[\w.-]+", spec):
            if "/" in spec or os.sep in spec or spec.startswith((".", "~")):
                raise FileNotFoundError(f"no such file or folder: {spec}")
            raise ValueError(f"unknown builder {spec!r}: expected one of {list(BUILDERS)}, a local file or folder, "
                             "or a hub dataset id 'org/name'")
        from tinyst.hub import snapshot_download  # the only network path: cache first, then HF_ENDPOINT

        local = snapshot_download(spec, repo_type="dataset", revision=revision)
    if data_files is not None:
        return None, split_files(data_files, local), {}
    return None, *folder_splits(local, name, data_dir)


def load_dataset(path, name=None, data_dir=None, data_files=None, split=None, cache_dir=None, revision=None,
                 streaming=False, **reader_options):
    """HF's `datasets.load_dataset`. No split -> DatasetDict of every split; a split string such as
    "train[:10%]+test" -> Dataset; a list of split strings -> list of Datasets. `reader_options`: csv
    `sep`/`delimiter`/`column_names`/`quotechar`/`quoting`, json `field`."""
    if streaming:
        raise ValueError("streaming=True is not supported: tinyst memory-maps datasets instead (same flat RAM)")
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or path, got {type(path).__name__}")
    builder, files, readme_options = _locate(os.fspath(path), name, data_dir, data_files, revision)
    root, tables = cache_root(cache_dir), {}

    def table(s):  # each split is read (converted, mapped) once, and only if asked for
        if s not in tables:
            tables[s] = read_split(s, files[s], reader_options, root, builder, readme_options)
        return tables[s]

    if split is None:
        return DatasetDict({s: Dataset(table(s), root, split=s) for s in files})
    if isinstance(split, (list, tuple)):
        return [load_dataset(path, name, data_dir, data_files, s, cache_dir, revision, **reader_options) for s in split]
    parts = parse_split(split)
    unknown = [p[0] for p in parts if p[0] not in files]
    if unknown:
        raise ValueError(f"unknown split {unknown[0]!r}: available splits are {list(files)}")
    pieces = [table(s).slice(a, b - a) for s, a, b in resolve_split(parts, {p[0]: table(p[0]).num_rows for p in parts})]
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
