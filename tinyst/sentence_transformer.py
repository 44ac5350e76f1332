"""`SentenceTransformer`: an nn.Sequential of modules (Transformer -> Pooling [-> Dense] [-> Normalize]).

Mirrors `sentence_transformers.SentenceTransformer` v3.4: load a folder in ST's layout (modules.json
+ one subfolder per module) or a plain HF checkpoint (mean pooling is added), `tokenize`,
`forward(features)` -> feature dict, `encode`, `similarity`, and `save` back to ST's layout.
Saving is atomic: everything is written to a temporary folder that is renamed into place.
Not included: remote code (`trust_remote_code`), PEFT adapters, multi-process encode, backends.
"""
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import torch
from torch import nn

from tinyst import __version__, util
from tinyst.encode import encode as _encode
from tinyst.model_card import SentenceTransformerModelCardData
from tinyst.fit import fit as _fit
from tinyst.models.pooling import Dense, Normalize, Pooling
from tinyst.models.transformer import Transformer
from tinyst.models.weights import read_json, write_json

MODULE_TYPES = {"Transformer": Transformer, "Pooling": Pooling, "Normalize": Normalize, "Dense": Dense}


def default_device() -> str:
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def load_modules(folder: Path, cache_dir=None) -> list:
    """Build the module list that modules.json describes (or Transformer + mean Pooling without one)."""
    if not (folder / "modules.json").is_file():
        warnings.warn(f"no modules.json in {folder}: creating a new model with mean pooling")
        first = Transformer(str(folder), cache_dir=cache_dir)
        return [first, Pooling(first.get_word_embedding_dimension(), "mean")]
    entries = read_json(folder / "modules.json")
    if not isinstance(entries, list):
        raise ValueError(f"{folder}/modules.json must hold a list of modules")
    modules = []
    for entry in sorted(entries, key=lambda e: e.get("idx", 0)):
        kind = str(entry.get("type", "")).rsplit(".", 1)[-1]
        # subtle: ST imports any other class from the folder's own code; tinyst only maps ST's built-ins
        if kind not in MODULE_TYPES or not str(entry.get("type")).startswith("sentence_transformers."):
            raise ValueError(f"{folder}/modules.json: unsupported module type {entry.get('type')!r}; "
                             f"tinyst knows {sorted(MODULE_TYPES)} and never imports code from a model folder")
        sub = (folder / entry.get("path", "")).resolve()
        if folder.resolve() not in (sub, *sub.parents):
            raise ValueError(f"{folder}/modules.json: module path {entry.get('path')!r} points outside the model folder")
        if kind == "Transformer":
            modules.append(Transformer(str(sub)))
        elif kind == "Normalize":
            modules.append(Normalize())  # all-MiniLM-L6-v2 names a 2_Normalize folder it does not ship
        else:
            if not sub.is_dir():
                raise FileNotFoundError(f"module folder {sub} named in modules.json does not exist")
            modules.append(MODULE_TYPES[kind].load(sub))
    check_dimensions(modules, f"{folder}/modules.json")
    return modules


def check_dimensions(modules: list, where: str) -> None:
    """Each module's input size must be the previous module's output size (else a crash mid-encode)."""
    dim = None
    for m in modules:
        need = getattr(m, "word_embedding_dimension", getattr(m, "in_features", None))
        if dim is not None and need is not None and need != dim:
            raise ValueError(f"{where}: {type(m).__name__} expects inputs of size {need}, "
                             f"but the module before it outputs {dim}")
        get = getattr(m, "get_word_embedding_dimension", getattr(m, "get_sentence_embedding_dimension", None))
        dim = get() if get else dim


class SentenceTransformer(nn.Sequential):
    def __init__(self, model_name_or_path=None, modules=None, device=None, prompts=None, default_prompt_name=None,
                 similarity_fn_name=None, cache_folder=None, local_files_only=False, truncate_dim=None,
                 model_card_data=None):
        config = {}
        if model_name_or_path is not None:
            if modules is not None:
                raise ValueError("pass either model_name_or_path or modules, not both")
            from tinyst.hub import resolve_model_path

            folder = resolve_model_path(model_name_or_path, cache_dir=cache_folder, local_files_only=local_files_only)
            modules = load_modules(folder, cache_folder)
            if (folder / "config_sentence_transformers.json").is_file():
                config = read_json(folder / "config_sentence_transformers.json")
        if not modules:
            raise ValueError("SentenceTransformer needs model_name_or_path or a non-empty list of modules")
        super().__init__(*modules)
        self.prompts = dict(prompts if prompts is not None else config.get("prompts") or {})
        self.default_prompt_name = default_prompt_name or config.get("default_prompt_name")
        if self.default_prompt_name is not None and self.default_prompt_name not in self.prompts:
            raise ValueError(f"default_prompt_name {self.default_prompt_name!r} is not one of the prompts {sorted(self.prompts)}")
        name = similarity_fn_name or config.get("similarity_fn_name") or "cosine"
        self.similarity_fn_name = util.check_similarity_fn_name(name)
        self.truncate_dim = truncate_dim
        self.model_card_data = model_card_data or SentenceTransformerModelCardData()
        if model_name_or_path is not None and not Path(str(model_name_or_path)).exists():
            self.model_card_data.set_base_model(str(model_name_or_path))  # a hub id, as ST records it
        self.to(device or default_device())

    # -- the feature-dict pipeline ------------------------------------------------------------
    def tokenize(self, texts) -> dict:
        return self[0].tokenize(texts)

    def forward(self, features: dict) -> dict:
        for module in self:
            features = module(features)
        return features

    encode = _encode
    fit = _fit

    # -- properties ST users reach for -------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def tokenizer(self):
        return self[0].tokenizer

    @property
    def max_seq_length(self) -> int:
        return self[0].max_seq_length

    @max_seq_length.setter
    def max_seq_length(self, value: int) -> None:
        self[0].max_seq_length = value

    def get_max_seq_length(self) -> int:
        return self.max_seq_length

    def get_sentence_embedding_dimension(self) -> int | None:
        dim = None
        for module in self:
            if hasattr(module, "get_sentence_embedding_dimension"):
                dim = module.get_sentence_embedding_dimension()
        return min(dim, self.truncate_dim) if dim and self.truncate_dim else dim

    def similarity(self, a, b) -> torch.Tensor:
        return util.SIMILARITY_FNS[self.similarity_fn_name](a, b)  # (N, M)

    def similarity_pairwise(self, a, b) -> torch.Tensor:
        return util.PAIRWISE_FNS[self.similarity_fn_name](a, b)  # (N,)

    # -- saving in ST's layout -----------------------------------------------------------------------
    def save(self, path, model_name=None, create_model_card=True, train_datasets=None, safe_serialization=True):
        """Write ST's folder layout to `path` atomically (temp folder, then rename)."""
        if not safe_serialization:
            warnings.warn("tinyst always saves model.safetensors; safe_serialization=False is ignored")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
        os.chmod(tmp, 0o755)  # mkdtemp makes it owner-only; a saved model folder should be readable
        try:
            self._write(tmp, create_model_card, model_name, train_datasets)
            if path.exists():
                old = path.with_name(f".{path.name}.old-{os.getpid()}")
                os.replace(path, old)
                os.replace(tmp, path)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, path)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    save_pretrained = save

    def _write(self, folder: Path, create_model_card: bool, model_name, train_datasets) -> None:
        config = {
            "__version__": {"sentence_transformers": "3.4.1", "tinyst": __version__, "pytorch": torch.__version__},
            "prompts": self.prompts,
            "default_prompt_name": self.default_prompt_name,
            "similarity_fn_name": self.similarity_fn_name,
        }
        write_json(config, folder / "config_sentence_transformers.json")
        entries = []
        for idx, module in enumerate(self):
            kind = type(module).__name__
            sub = "" if idx == 0 and isinstance(module, Transformer) else f"{idx}_{kind}"
            (folder / sub).mkdir(parents=True, exist_ok=True)
            module.save(folder / sub)
            entries.append({"idx": idx, "name": str(idx), "path": sub, "type": f"sentence_transformers.models.{kind}"})
        write_json(entries, folder / "modules.json")
        if create_model_card:
            from tinyst.model_card_render import write_model_card

            write_model_card(self, folder, model_name=model_name, train_datasets=train_datasets)

    def __repr__(self) -> str:
        inner = ", ".join(repr(m) for m in self)
        return f"SentenceTransformer({inner}, similarity={self.similarity_fn_name})"


def from_config(config: dict, tokenizer, max_seq_length=None, pooling_mode="mean", normalize=False, **kwargs):
    """A randomly initialised SentenceTransformer for training from scratch: `config` is a
    config.json dict (model_type "bert" or "mpnet", sizes), `tokenizer` a tokenizers.Tokenizer."""
    first = Transformer(config=config, tokenizer=tokenizer, max_seq_length=max_seq_length)
    modules = [first, Pooling(first.get_word_embedding_dimension(), pooling_mode)]
    if normalize:
        modules.append(Normalize())
    return SentenceTransformer(modules=modules, **kwargs)
