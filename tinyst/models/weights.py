"""Strict, table-driven weight loading and saving in the hub's key layout.

On disk tinyst uses exactly the keys sentence-transformers writes (prefix-free base-model keys,
pooler included), so folders move between the two libraries unchanged. In memory the modules have
short names; `BERT_KEYS` / `MPNET_KEYS` map one to the other in both directions.
Loading accepts plain HF checkpoints too: `bert.`/`mpnet.` prefixes, MLM-head keys, legacy
LayerNorm gamma/beta names and `position_ids` buffers. Anything else unexpected, missing (other
than the pooler) or mis-shaped is an error naming the tensor.
Not included: sharded checkpoints, TF/Flax weights, dtype conversion beyond float upcasting.
"""
import json
import os
import pickle
import warnings
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from tinyst.models.bert import BERT_KEYS, expand_key_table
from tinyst.models.mpnet import MPNET_KEYS

KEY_TABLES = {"bert": BERT_KEYS, "mpnet": MPNET_KEYS}
IGNORED_PREFIXES = ("cls.", "lm_head.", "classifier.", "qa_outputs.")  # task heads of *ForXxx checkpoints


def read_state_dict(folder: Path) -> dict:
    """Read model.safetensors (preferred) or pytorch_model.bin (weights_only: never unpickles code)."""
    st, pt = folder / "model.safetensors", folder / "pytorch_model.bin"
    if st.is_file():
        try:
            return load_file(str(st))
        except (SafetensorError, OSError, ValueError) as e:
            raise ValueError(f"{st} is not a readable safetensors file (corrupt or truncated?): {e}") from None
    if pt.is_file():
        return torch_load_safe(pt)
    raise FileNotFoundError(f"no model.safetensors or pytorch_model.bin in {folder}")


def torch_load_safe(path: Path):
    """torch.load(weights_only=True) with short errors that name the file (and never advise weights_only=False)."""
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except pickle.UnpicklingError as e:  # a foreign global (code) or bytes that are not a pickle
        detail = str(e).split("WeightsUnpickler error:")[-1].strip().split("\n")[0].split(". ")[0]
        raise ValueError(f"{path} could not be loaded with weights_only=True: corrupt, or holds more than tensors "
                         f"and plain values ({detail}); tinyst never unpickles code") from None
    except Exception as e:  # zip/stream errors of a truncated or garbled file
        first = str(e).split(". ")[0]
        raise ValueError(f"{path} is not a readable torch file (corrupt or truncated?): {first}") from None


def normalize_hub_keys(state: dict, model_type: str) -> dict:
    """Plain HF checkpoint -> the prefix-free base-model keys ST saves."""
    out = {}
    for key, value in state.items():
        if key.startswith(IGNORED_PREFIXES) or key.endswith("position_ids"):
            continue
        for prefix in (f"{model_type}.", "model."):
            if key.startswith(prefix):
                key = key[len(prefix) :]
        if key.endswith(".gamma"):
            key = key[: -len(".gamma")] + ".weight"
        elif key.endswith(".beta"):
            key = key[: -len(".beta")] + ".bias"
        out[key] = value
    return out


def load_hub_state(encoder: torch.nn.Module, state: dict, source: str) -> None:
    """Copy hub-keyed tensors into the encoder, strictly."""
    model_type = encoder.model_type
    table = expand_key_table(KEY_TABLES[model_type], encoder.config.num_hidden_layers)
    state = normalize_hub_keys(state, model_type)
    ours = encoder.state_dict()
    mapped, unexpected = {}, []
    for key, value in state.items():
        module, _, leaf = key.rpartition(".")
        if module not in table or f"{table[module]}.{leaf}" not in ours:
            unexpected.append(key)
            continue
        name = f"{table[module]}.{leaf}"
        if tuple(value.shape) != tuple(ours[name].shape):
            raise ValueError(
                f"{source}: tensor {key!r} has shape {tuple(value.shape)}, "
                f"but the config gives {tuple(ours[name].shape)}"
            )
        if ours[name].is_floating_point() and not value.is_floating_point():
            raise ValueError(f"{source}: tensor {key!r} has dtype {value.dtype}, expected a floating-point tensor")
        if value.is_floating_point() and not torch.isfinite(value).all():
            raise ValueError(f"{source}: tensor {key!r} holds NaN or infinite values (corrupt or diverged weights)")
        mapped[name] = value.float() if value.is_floating_point() else value
    if unexpected:
        raise ValueError(f"{source}: unexpected tensor(s) for a {model_type} model: {unexpected[:5]}")
    missing = [k for k in ours if k not in mapped]
    if any(not k.startswith("pooler.") for k in missing):
        raise ValueError(f"{source}: missing tensor(s): {[k for k in missing if not k.startswith('pooler.')][:5]}")
    if missing:
        warnings.warn(f"{source}: no pooler weights; the pooler is randomly initialised (ST pooling does not use it)")
    encoder.load_state_dict(mapped, strict=False)


def hub_state(encoder: torch.nn.Module) -> dict:
    """The encoder's weights under the hub's prefix-free keys, ready for save_file."""
    table = expand_key_table(KEY_TABLES[encoder.model_type], encoder.config.num_hidden_layers)
    inverse = {ours: hub for hub, ours in table.items()}
    out = {}
    for name, value in encoder.state_dict().items():
        module, _, leaf = name.rpartition(".")
        out[f"{inverse[module]}.{leaf}"] = value.detach().contiguous().cpu()
    return out


def save_safetensors(state: dict, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    save_file(state, str(tmp), metadata={"format": "pt"})
    os.replace(tmp, path)


def write_json(obj, path: Path, indent: int = 2) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=indent) + "\n")
    os.replace(tmp, path)


def read_json(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"missing file {path}") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON: {e}") from None
