"""`Transformer`: tokenizer + encoder, the first module of every SentenceTransformer.

Mirrors `sentence_transformers.models.Transformer` v3.4: reads a hub folder (config.json, weights,
tokenizer.json, sentence_bert_config.json), tokenizes with padding to the longest text in the batch
and truncation to max_seq_length (whatever padding the tokenizer.json stores is overridden),
and adds `token_embeddings` to the feature dict. Saves the same files back.
Not included: model_args/tokenizer_args/config_args passthrough, ONNX/OpenVINO backends,
slow (Python) tokenizers: a folder needs tokenizer.json.
"""
import json
import warnings
from pathlib import Path

import torch
from tokenizers import Tokenizer
from torch import nn

from tinyst.models.bert import BertConfig, BertModel
from tinyst.models.mpnet import MPNetModel
from tinyst.models.weights import hub_state, load_hub_state, read_json, read_state_dict, save_safetensors, write_json

ENCODERS = {"bert": BertModel, "mpnet": MPNetModel}
DEFAULT_PAD = {"bert": "[PAD]", "mpnet": "<pad>"}
TOKENIZER_EXTRAS = ("tokenizer_config.json", "special_tokens_map.json", "vocab.txt")
ARCHITECTURES = {"bert": "BertModel", "mpnet": "MPNetModel"}


def build_encoder(config: dict) -> nn.Module:
    model_type = config.get("model_type")
    if model_type not in ENCODERS:
        raise ValueError(f"unknown model_type {model_type!r} in config.json; tinyst supports {sorted(ENCODERS)}")
    return ENCODERS[model_type](BertConfig.from_dict(config))


class Transformer(nn.Module):
    def __init__(
        self,
        model_name_or_path=None,
        max_seq_length=None,
        do_lower_case=False,
        cache_dir=None,
        *,
        config: dict | None = None,
        tokenizer: Tokenizer | None = None,
    ):
        """Load from a folder / hub name, or build a randomly initialised encoder from
        `config` (a config.json dict with model_type) and a `tokenizers.Tokenizer`."""
        super().__init__()
        self.output_hidden_states = False
        self.tokenizer_files = {}  # raw bytes of tokenizer_config.json etc., written back on save
        if model_name_or_path is not None:
            from tinyst.hub import resolve_model_path

            folder = resolve_model_path(model_name_or_path, cache_dir=cache_dir, st_org=False)
            config = read_json(folder / "config.json")
            tok_file = folder / "tokenizer.json"
            if not tok_file.is_file():
                raise FileNotFoundError(f"missing {tok_file}: tinyst needs a fast-tokenizer file")
            try:
                tokenizer = Tokenizer.from_file(str(tok_file))
            except Exception as e:  # the Rust side raises a bare Exception
                raise ValueError(f"{tok_file} is not a valid tokenizers file: {e}") from None
            for name in TOKENIZER_EXTRAS:
                if (folder / name).is_file():
                    self.tokenizer_files[name] = (folder / name).read_bytes()
            sbert = folder / "sentence_bert_config.json"
            if sbert.is_file():
                sbert_cfg = read_json(sbert)
                max_seq_length = max_seq_length or sbert_cfg.get("max_seq_length")
                do_lower_case = do_lower_case or bool(sbert_cfg.get("do_lower_case", False))
            try:
                self.auto_model = build_encoder(config)
            except (ValueError, TypeError) as e:
                raise ValueError(f"{folder / 'config.json'}: {e}") from None
            if "auto_map" in config:  # remote code (trust_remote_code in HF): never imported here
                warnings.warn(f"{folder / 'config.json'} names custom code (auto_map {config['auto_map']}); tinyst "
                              f"ignores it and uses its own {config['model_type']} implementation")
            load_hub_state(self.auto_model, read_state_dict(folder), str(folder))
        elif config is None or tokenizer is None:
            raise ValueError("Transformer needs model_name_or_path, or both config= and tokenizer=")
        else:
            self.auto_model = build_encoder(config)
        self.config_dict = dict(config)
        self.model_type = config["model_type"]
        self.do_lower_case = do_lower_case
        if tokenizer.get_vocab_size() > self.auto_model.config.vocab_size:
            raise ValueError(
                f"the tokenizer has {tokenizer.get_vocab_size()} tokens but the embedding table only "
                f"{self.auto_model.config.vocab_size} rows: token ids would fall outside it"
            )
        self.tokenizer = tokenizer
        try:
            self.max_seq_length = max_seq_length or self._default_max_seq_length()
        except ValueError as e:
            where = f" (from {model_name_or_path}/sentence_bert_config.json)" if model_name_or_path else ""
            raise ValueError(f"{e}{where}") from None

    @property
    def max_positions(self) -> int:
        n = self.auto_model.config.max_position_embeddings
        return n - 2 if self.model_type == "mpnet" else n  # MPNet positions start at padding_idx + 1 = 2

    def _default_max_seq_length(self) -> int:
        tok_cfg = json.loads(self.tokenizer_files.get("tokenizer_config.json", b"{}"))
        limit = tok_cfg.get("model_max_length")
        return min(self.max_positions, limit) if isinstance(limit, int) else self.max_positions

    @property
    def max_seq_length(self) -> int:
        return self._max_seq_length

    @max_seq_length.setter
    def max_seq_length(self, value: int) -> None:
        if not isinstance(value, int) or value < 2:
            raise ValueError(f"max_seq_length must be an int >= 2, got {value!r}")
        if value > self.max_positions:
            raise ValueError(f"max_seq_length {value} exceeds the model's {self.max_positions} position embeddings")
        self._max_seq_length = value
        self._set_tokenizer_limits()

    def _pad_token(self) -> str:
        for name in ("tokenizer_config.json", "special_tokens_map.json"):
            pad = json.loads(self.tokenizer_files.get(name, b"{}")).get("pad_token")
            if pad:
                return pad["content"] if isinstance(pad, dict) else pad
        if self.tokenizer.padding:  # tokenizer.json's own padding setting
            return self.tokenizer.padding["pad_token"]
        return DEFAULT_PAD[self.model_type]

    def _set_tokenizer_limits(self) -> None:
        pad = self._pad_token()
        pad_id = self.tokenizer.token_to_id(pad)
        if pad_id is None:
            raise ValueError(f"the tokenizer has no padding token {pad!r}")
        self.tokenizer.no_padding()  # forget whatever the file stored (e.g. fixed length 128)
        self.tokenizer.enable_padding(pad_id=pad_id, pad_token=pad)  # pad to the longest in the batch
        self.tokenizer.enable_truncation(max_length=self._max_seq_length, strategy="longest_first")

    def get_word_embedding_dimension(self) -> int:
        return self.auto_model.config.hidden_size

    def _clean(self, texts) -> list:
        def clean(t):
            t = str(t).strip()
            return t.lower() if self.do_lower_case else t

        return [(clean(t[0]), clean(t[1])) if isinstance(t, (tuple, list)) else clean(t) for t in texts]

    def _encode_batch(self, texts) -> list:
        """The tokenizer's Encodings; encode_batch_fast (tokenizers >= 0.20) skips character offsets."""
        fast = getattr(self.tokenizer, "encode_batch_fast", None)
        return (fast or self.tokenizer.encode_batch)(self._clean(texts))

    def token_lengths(self, texts, chunk: int = 8192) -> list:
        """Number of tokens each text gets from tokenize (after truncation), without building tensors;
        in chunks, so a million texts never hold a million Encoding objects at once."""
        out = []
        for i in range(0, len(texts), chunk):
            out += [sum(e.attention_mask) for e in self._encode_batch(texts[i : i + chunk])]
        return out

    def tokenize(self, texts) -> dict:
        """list of str (or of (str, str) pairs) -> dict of (B, T) LongTensors."""
        encodings = self._encode_batch(texts)
        features = {
            "input_ids": torch.tensor([e.ids for e in encodings], dtype=torch.long),  # (B, T)
            "attention_mask": torch.tensor([e.attention_mask for e in encodings], dtype=torch.long),  # (B, T)
        }
        if self.model_type == "bert":
            features["token_type_ids"] = torch.tensor([e.type_ids for e in encodings], dtype=torch.long)  # (B, T)
        return features

    def check_ids(self, input_ids: torch.Tensor) -> None:
        """Ids outside the embedding table or more tokens than positions: a clear error, not an index crash
        (on CUDA, a device-side assert that kills the process)."""
        T, n = input_ids.shape[-1], self.auto_model.config.vocab_size
        if T > self.max_positions:
            raise ValueError(f"input_ids has {T} tokens but the model has {self.max_positions} position embeddings; "
                             f"tokenize with truncation (max_seq_length={self.max_seq_length})")
        if input_ids.numel() and bool((input_ids.min() < 0) | (input_ids.max() >= n)):
            raise ValueError(f"input_ids holds ids from {input_ids.min().item()} to {input_ids.max().item()}, "
                             f"outside the embedding table [0, {n})")

    def forward(self, features: dict) -> dict:
        self.check_ids(features["input_ids"])
        tokens, states = self.auto_model(
            features["input_ids"], features["attention_mask"], features.get("token_type_ids"), self.output_hidden_states
        )
        out = {**features, "token_embeddings": tokens}  # (B, T, D)
        if states is not None:
            out["all_layer_embeddings"] = states  # L+1 x (B, T, D)
        return out

    def save(self, folder) -> None:
        folder = Path(folder)
        config = {**self.config_dict, "architectures": [ARCHITECTURES[self.model_type]]}
        config.pop("auto_map", None)  # the weights are a plain BertModel/MPNetModel now; the custom code is not copied
        config["torch_dtype"] = "float32"
        write_json(config, folder / "config.json")
        save_safetensors(hub_state(self.auto_model), folder / "model.safetensors")
        clean = Tokenizer.from_str(self.tokenizer.to_str())
        clean.no_padding()
        clean.no_truncation()
        clean.save(str(folder / "tokenizer.json"))
        files = dict(self.tokenizer_files)
        files.setdefault("tokenizer_config.json", json.dumps(self._tokenizer_config(), indent=2).encode())
        for name, data in files.items():
            (folder / name).write_bytes(data)
        write_json({"max_seq_length": self.max_seq_length, "do_lower_case": self.do_lower_case},
                   folder / "sentence_bert_config.json", indent=4)

    def _tokenizer_config(self) -> dict:
        """A tokenizer_config.json for tokenizers built in code, so transformers picks the right class."""
        special = {"bert": ("[CLS]", "[SEP]", "[UNK]", "[MASK]"), "mpnet": ("<s>", "</s>", "[UNK]", "<mask>")}
        cls, sep, unk, mask = special[self.model_type]
        normalizer = json.loads(self.tokenizer.to_str()).get("normalizer") or {}
        # subtle: transformers rebuilds the normalizer when do_lower_case disagrees with it, so mirror the file
        lowercase = bool(normalizer.get("lowercase", False))
        return {"tokenizer_class": "BertTokenizer" if self.model_type == "bert" else "MPNetTokenizer",
                "model_max_length": self.max_seq_length, "pad_token": self._pad_token(), "cls_token": cls,
                "sep_token": sep, "unk_token": unk, "mask_token": mask, "do_lower_case": lowercase}

    def __repr__(self) -> str:
        c = self.auto_model.config
        return (f"Transformer({self.model_type}, layers={c.num_hidden_layers}, hidden={c.hidden_size}, "
                f"heads={c.num_attention_heads}, max_seq_length={self.max_seq_length})")
