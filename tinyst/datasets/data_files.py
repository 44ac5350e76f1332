"""Which files make which split: `data_files` patterns, and HF's rules for a dataset folder (a hub repo).

Mirrors `datasets/data_files.py` and the README `configs:` handling of HF datasets. A folder is read as:
README.md `configs:` (subset name -> split -> glob patterns) first; else subset folders by `name`; then
`data/{split}-00000-of-00001.*` shard names (split names taken literally; a subset folder counts as
`data/`); else split keywords (train/training, validation/valid/dev/val, test/testing/eval/evaluation)
in folder names, then in file names; else every file is "train".
Not included: full YAML (only the block-style subset `configs:` uses), remote (hf://, https://) patterns.
"""
import glob
import os
import re
from pathlib import Path

from tinyst.datasets.readers import format_of

SPLIT_KEYWORDS = {"train": ("train", "training"), "validation": ("validation", "valid", "dev", "val"),
                  "test": ("test", "testing", "eval", "evaluation")}
_SEP = "[-._ 0-9]"  # what may separate a split keyword from the rest of a name (HF's NON_WORDS_CHARS)
_SHARD = re.compile(r"(?:data/)?(\w+(?:\.\w+)*)-\d{5}-of-\d{5}[^/]*\.[^/]*")


def resolve(patterns, base: Path, inside: Path | None = None) -> list:
    """Files matching a path/glob (or list of them), relative to `base`; each must match something."""
    out = []
    for pattern in [patterns] if isinstance(patterns, (str, os.PathLike)) else list(patterns):
        full = Path(base, Path(os.fspath(pattern)).expanduser())
        matches = sorted(Path(m) for m in glob.glob(str(full), recursive=True) if Path(m).is_file())
        if inside is not None and any(not m.resolve().is_relative_to(inside.resolve()) for m in matches):
            raise ValueError(f"data file pattern {os.fspath(pattern)!r} reaches outside the dataset folder {inside}")
        if not matches:
            raise FileNotFoundError(f"no data file matches {os.fspath(pattern)!r} (looked in {base})")
        out.extend(matches)
    return out


def split_files(data_files, base: Path, inside: Path | None = None) -> dict:
    """`data_files` as HF takes it (a path, a list, or a dict split -> path(s)) -> {split: [files]}."""
    if isinstance(data_files, (str, os.PathLike, list, tuple)):
        data_files = {"train": data_files}
    if not isinstance(data_files, dict) or not data_files:
        raise TypeError(f"data_files must be a path, a list of paths or a dict split -> path(s), got {data_files!r}")
    return {str(split): resolve(p, base, inside) for split, p in data_files.items()}


def _data_files_in(base: Path, builder=None, exclude=()) -> list:
    rel = ((p, p.relative_to(base).parts) for p in sorted(base.rglob("*")) if p.is_file() and format_of(p))
    files = [p for p, parts in rel if parts[0] not in exclude and not any(s.startswith(".") for s in parts)]
    return [p for p in files if builder is None or format_of(p)[0] == builder]


def infer_splits(base: Path, builder=None, exclude=()) -> dict:
    """HF's default split inference over the data files below `base` (minus the `exclude` subfolders)."""
    files = _data_files_in(base, builder, exclude)
    if not files:
        raise FileNotFoundError(f"no csv/json/parquet/arrow data files found in {base}")
    kinds = [format_of(p)[0] for p in files]
    files = [p for p, k in zip(files, kinds) if k == max(kinds, key=kinds.count)]  # one format: the most common, as HF
    rel = {p: p.relative_to(base).as_posix() for p in files}
    shards = {}
    for p, r in rel.items():
        if m := _SHARD.fullmatch(r):
            shards.setdefault(m[1], []).append(p)
    if shards:  # HF's order: train, validation, test, then the others sorted
        return {s: shards[s] for s in [s for s in SPLIT_KEYWORDS if s in shards] + sorted(set(shards) - set(SPLIT_KEYWORDS))}
    for in_dir in (True, False):  # a split keyword as a folder name first, then inside a file name
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
    """Parse block-style YAML (maps, lists, scalars) from line i at `indent` -> (value, next line)."""
    seq = lines[i][1].startswith("- ")
    out = [] if seq else {}
    while i < len(lines) and lines[i][0] == indent and lines[i][1].startswith("- ") == seq:
        text = lines[i][1][2:].strip() if seq else lines[i][1]
        if seq and ":" not in text.split(" #")[0].replace("://", ""):
            out.append(_scalar(text))
            i += 1
        elif seq:  # "- key: value" opens a map whose keys sit 2 columns deeper
            lines[i] = (indent + 2, text)
            value, i = _yaml(lines, i, indent + 2)
            out.append(value)
        else:
            key, _, rest = (t.strip() for t in text.partition(":"))
            i += 1
            nested = i < len(lines) and (lines[i][0] > indent or lines[i][1].startswith("- "))
            out[key], i = (_scalar(rest), i) if rest or not nested else _yaml(lines, i, lines[i][0])
    return out, i


def _scalar(text: str):
    if text.startswith("[") and text.endswith("]"):
        return [_scalar(t.strip()) for t in text[1:-1].split(",") if t.strip()]
    if text[:1] in "'\"" and text[-1:] == text[:1]:
        return text[1:-1]
    return {"true": True, "false": False}.get(text.lower(), text or None)


def readme_configs(folder: Path) -> list:
    """The `configs:` list of README.md's YAML header ([] when there is none)."""
    readme = folder / "README.md"
    text = readme.read_text(encoding="utf-8", errors="replace") if readme.is_file() else ""
    m = re.match(r"---\s*\n(.*?)\n---", text, re.S)
    lines = [(len(ln) - len(ln.lstrip()), ln.strip()) for ln in (m[1].splitlines() if m else []) if ln.strip()]
    start = next((i for i, (ind, t) in enumerate(lines) if ind == 0 and t == "configs:"), None)
    if start is None or start + 1 >= len(lines):
        return []
    configs, _ = _yaml(lines, start + 1, lines[start + 1][0])
    if not isinstance(configs, list) or not all(isinstance(c, dict) for c in configs):
        raise ValueError(f"{readme}: could not read its `configs:` block")
    return configs


def _pick(names: list, name, folder: Path, defaults=()) -> str:
    if name is None:
        if len(defaults) == 1 or len(names) == 1:
            return (list(defaults) or names)[0]
        raise ValueError(f"{folder} has several subsets {names}: pick one with name=, e.g. name={names[0]!r}")
    if name not in names:
        raise ValueError(f"unknown subset {name!r} in {folder}; available subsets: {names}")
    return name


def folder_splits(folder: Path, name=None, data_dir=None) -> tuple:
    """({split: [files]}, reader options from README) for subset `name` of a dataset folder (a hub repo copy)."""
    configs = readme_configs(folder)
    if configs:
        by_name = {c.get("config_name", "default"): c for c in configs}
        cfg = by_name[_pick(list(by_name), name, folder, [n for n, c in by_name.items() if c.get("default")])]
        base = folder / (cfg.get("data_dir") or data_dir or "")
        files = cfg.get("data_files")
        if isinstance(files, list) and files and all(isinstance(f, dict) for f in files):
            files = {f.get("split", "train"): f.get("path") for f in files}
        options = {k: v for k, v in cfg.items() if k not in ("config_name", "data_files", "data_dir", "default")}
        return (infer_splits(base) if files is None else split_files(files, base, inside=folder)), options
    base = folder / data_dir if data_dir else folder
    if not base.is_dir():
        raise FileNotFoundError(f"data_dir {data_dir!r} not found in {folder}")
    not_subsets = {w for words in SPLIT_KEYWORDS.values() for w in words} | {"data"}
    subsets = sorted(d.name for d in base.iterdir() if d.is_dir() and not d.name.startswith(".")
                     and d.name not in not_subsets and _data_files_in(d))
    if name not in (None, "default") or (subsets and not _data_files_in(base, exclude=subsets)):
        return infer_splits(base / _pick(subsets, name, folder)), {}
    return infer_splits(base, exclude=subsets), {}  # files beside the subset folders form the default subset
