"""`DatasetDict`: a dict of split name -> Dataset that applies each Dataset operation per split.

Mirrors `datasets/dataset_dict.py` (HF datasets): same on-disk layout (`dataset_dict.json` listing the
splits, one saved Dataset folder per split), so either library loads what the other saved.
Not included: push_to_hub, per-split cache file names, set_format, flatten, class_encode_column.
"""
import json
from pathlib import Path

from tinyst.datasets.arrow_io import replace_dir
from tinyst.datasets.dataset import Dataset


class DatasetDict(dict):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name, ds in self.items():
            if not isinstance(ds, Dataset):
                raise TypeError(f"split {name!r} must be a tinyst Dataset, got {type(ds).__name__}")

    def __getitem__(self, split):
        if split not in self:
            raise KeyError(f"unknown split {split!r}; available splits: {list(self)}")
        return super().__getitem__(split)

    def __repr__(self) -> str:
        body = ",\n".join(f"    {k}: " + repr(v).replace("\n", "\n    ") for k, v in self.items())
        return "DatasetDict({\n" + body + "\n})"

    def _per_split(self, method: str, *args, **kwargs) -> "DatasetDict":
        return DatasetDict({k: getattr(ds, method)(*args, **kwargs) for k, ds in self.items()})

    column_names = property(lambda self: {k: ds.column_names for k, ds in self.items()})
    num_rows = property(lambda self: {k: ds.num_rows for k, ds in self.items()})
    num_columns = property(lambda self: {k: ds.num_columns for k, ds in self.items()})
    shape = property(lambda self: {k: ds.shape for k, ds in self.items()})

    def map(self, function=None, **kwargs) -> "DatasetDict":
        return self._per_split("map", function, **kwargs)

    def filter(self, function, **kwargs) -> "DatasetDict":
        return self._per_split("filter", function, **kwargs)

    def select_columns(self, column_names) -> "DatasetDict":
        return self._per_split("select_columns", column_names)

    def remove_columns(self, column_names) -> "DatasetDict":
        return self._per_split("remove_columns", column_names)

    def rename_column(self, original_column_name: str, new_column_name: str) -> "DatasetDict":
        return self._per_split("rename_column", original_column_name, new_column_name)

    def rename_columns(self, column_mapping: dict) -> "DatasetDict":
        return self._per_split("rename_columns", column_mapping)

    def shuffle(self, seeds=None, seed=None, generators=None) -> "DatasetDict":
        """Shuffle every split; `seeds` / `generators` may be dicts keyed by split (HF's signature)."""
        if seed is not None and seeds is not None:
            raise ValueError("pass either seed= or seeds=, not both")
        seeds = seed if seeds is None else seeds
        pick = lambda v, k: v.get(k) if isinstance(v, dict) else v  # noqa: E731
        return DatasetDict({k: ds.shuffle(seed=pick(seeds, k), generator=pick(generators, k)) for k, ds in self.items()})

    def save_to_disk(self, dataset_dict_path) -> None:
        def fill(folder: Path):
            (folder / "dataset_dict.json").write_text(json.dumps({"splits": list(self)}))
            for k, ds in self.items():
                (folder / k).mkdir()
                ds._write_dir(folder / k)

        for k in self:
            if not k or "/" in k or k in (".", ".."):
                raise ValueError(f"split name {k!r} cannot be a folder name")
        replace_dir(dataset_dict_path, fill)

    @staticmethod
    def load_from_disk(dataset_dict_path, cache_dir=None) -> "DatasetDict":
        folder = Path(dataset_dict_path)
        if not (folder / "dataset_dict.json").is_file():
            raise FileNotFoundError(f"{folder} is not a saved DatasetDict (no dataset_dict.json)")
        splits = json.loads((folder / "dataset_dict.json").read_text()).get("splits", [])
        if any(not isinstance(k, str) or "/" in k or k in ("", ".", "..") for k in splits):
            raise ValueError(f"{folder}/dataset_dict.json lists unsafe split names: {splits}")
        return DatasetDict({k: Dataset.load_from_disk(folder / k, cache_dir) for k in splits})
