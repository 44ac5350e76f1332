"""The modules after the encoder: `Pooling` (token states -> one vector), `Normalize`, `Dense`.

Mirrors `sentence_transformers.models.{Pooling, Normalize, Dense}` v3.4, including their on-disk
config files (1_Pooling/config.json, 2_Dense/config.json + model.safetensors, empty 2_Normalize/).
Not included: WeightedLayerPooling, LSTM/CNN modules, StaticEmbedding, Router.
"""
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from tinyst.models.weights import read_json, read_state_dict, save_safetensors, write_json

MODES = ("cls", "max", "mean", "mean_sqrt_len_tokens", "weightedmean", "lasttoken")  # ST's concatenation order
FLAGS = {
    "cls": "pooling_mode_cls_token",
    "max": "pooling_mode_max_tokens",
    "mean": "pooling_mode_mean_tokens",
    "mean_sqrt_len_tokens": "pooling_mode_mean_sqrt_len_tokens",
    "weightedmean": "pooling_mode_weightedmean_tokens",
    "lasttoken": "pooling_mode_lasttoken",
}


class Pooling(nn.Module):
    def __init__(self, word_embedding_dimension: int, pooling_mode: str | None = None, include_prompt=True, **flags):
        super().__init__()
        unknown = set(flags) - set(FLAGS.values())
        if unknown:
            raise ValueError(f"unknown Pooling option(s) {sorted(unknown)}")
        if pooling_mode is not None:
            if pooling_mode not in MODES:
                raise ValueError(f"pooling_mode must be one of {MODES}, got {pooling_mode!r}")
            self.modes = [pooling_mode]
        else:
            on = {m for m in MODES if flags.get(FLAGS[m], m == "mean")}  # mean is on unless turned off
            self.modes = [m for m in MODES if m in on]
        if not self.modes:
            raise ValueError("Pooling needs at least one pooling mode")
        self.word_embedding_dimension = word_embedding_dimension
        self.include_prompt = include_prompt

    def forward(self, features: dict) -> dict:
        tok = features["token_embeddings"]  # (B, T, D)
        mask = features["attention_mask"].clone()  # (B, T)
        if not self.include_prompt and "prompt_length" in features:
            mask[:, : features["prompt_length"]] = 0
        m = mask.unsqueeze(-1).to(tok.dtype)  # (B, T, 1)
        n = m.sum(1).clamp(min=1e-9)  # (B, 1) tokens per text
        outputs = []
        for mode in self.modes:
            if mode == "cls":
                outputs.append(features.get("cls_token_embeddings", tok[:, 0]))  # (B, D)
            elif mode == "max":
                outputs.append(tok.masked_fill(m == 0, -1e9).max(1).values)  # (B, D)
            elif mode == "mean":
                outputs.append((tok * m).sum(1) / n)  # (B, D)
            elif mode == "mean_sqrt_len_tokens":
                outputs.append((tok * m).sum(1) / n.sqrt())  # (B, D)
            elif mode == "weightedmean":
                w = torch.arange(1, tok.shape[1] + 1, device=tok.device, dtype=tok.dtype)[None, :, None] * m  # (B, T, 1)
                outputs.append((tok * w).sum(1) / w.sum(1).clamp(min=1e-9))  # (B, D)
            else:  # lasttoken: the last position whose mask is 1
                last = mask.shape[1] - 1 - mask.flip(1).argmax(1)  # (B,)
                outputs.append((tok * m)[torch.arange(tok.shape[0], device=tok.device), last])  # (B, D)
        return {**features, "sentence_embedding": torch.cat(outputs, 1)}  # (B, len(modes) * D)

    def get_sentence_embedding_dimension(self) -> int:
        return len(self.modes) * self.word_embedding_dimension

    def get_config_dict(self) -> dict:
        cfg = {"word_embedding_dimension": self.word_embedding_dimension}
        cfg.update({FLAGS[m]: m in self.modes for m in MODES})
        cfg["include_prompt"] = self.include_prompt
        return cfg

    def save(self, folder) -> None:
        write_json(self.get_config_dict(), Path(folder) / "config.json", indent=4)

    @classmethod
    def load(cls, folder):
        cfg = read_json(Path(folder) / "config.json")
        if "word_embedding_dimension" not in cfg:
            raise ValueError(f"{folder}/config.json has no word_embedding_dimension")
        try:
            return cls(**cfg)
        except ValueError as e:
            raise ValueError(f"{folder}/config.json: {e}") from None

    def __repr__(self) -> str:
        return f"Pooling({'+'.join(self.modes)}, dim={self.get_sentence_embedding_dimension()})"


class Normalize(nn.Module):
    """L2-normalise the sentence embedding, so dot product == cosine similarity."""

    def forward(self, features: dict) -> dict:
        return {**features, "sentence_embedding": F.normalize(features["sentence_embedding"], p=2, dim=1)}

    def save(self, folder) -> None:
        pass  # ST writes an empty folder

    @classmethod
    def load(cls, folder):
        return cls()


def activation_from_name(name: str | None) -> nn.Module:
    """'torch.nn.modules.activation.Tanh' -> nn.Tanh(). Only torch.nn classes: nothing is imported or run."""
    if name is None:
        return nn.Identity()
    cls = getattr(nn, str(name).rsplit(".", 1)[-1], None)
    if not (str(name).startswith("torch.nn.") and isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise ValueError(f"unsupported Dense activation_function {name!r}; expected a torch.nn activation class")
    return cls()


class Dense(nn.Module):
    """A feed-forward layer on the sentence embedding: act(W x + b)."""

    def __init__(self, in_features: int, out_features: int, bias=True, activation_function=nn.Tanh()):
        super().__init__()
        self.in_features, self.out_features, self.bias = in_features, out_features, bias
        self.activation_function = activation_function if activation_function is not None else nn.Identity()
        self.linear = nn.Linear(in_features, out_features, bias=bias)

    def forward(self, features: dict) -> dict:
        return {**features, "sentence_embedding": self.activation_function(self.linear(features["sentence_embedding"]))}

    def get_sentence_embedding_dimension(self) -> int:
        return self.out_features

    def save(self, folder) -> None:
        act = type(self.activation_function)
        write_json({"in_features": self.in_features, "out_features": self.out_features, "bias": self.bias,
                    "activation_function": f"{act.__module__}.{act.__name__}"}, Path(folder) / "config.json")
        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        save_safetensors(state, Path(folder) / "model.safetensors")

    @classmethod
    def load(cls, folder):
        folder = Path(folder)
        cfg = read_json(folder / "config.json")
        if not {"in_features", "out_features"} <= set(cfg):
            raise ValueError(f"{folder}/config.json: Dense needs in_features and out_features, got keys {sorted(cfg)}")
        unknown = set(cfg) - {"in_features", "out_features", "bias", "activation_function"}
        if unknown:  # e.g. newer ST versions' extra keys: ignored, but said
            warnings.warn(f"{folder}/config.json: ignoring unknown Dense option(s) {sorted(unknown)}")
            cfg = {k: v for k, v in cfg.items() if k not in unknown}
        cfg["activation_function"] = activation_from_name(cfg.get("activation_function"))
        model = cls(**cfg)
        state = read_state_dict(folder)  # safetensors, or a .bin through weights_only=True; errors name the file
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as e:
            raise ValueError(f"{folder}: Dense weights do not match its config: {e}") from None
        return model

    def __repr__(self) -> str:
        return f"Dense({self.in_features} -> {self.out_features}, {type(self.activation_function).__name__})"
