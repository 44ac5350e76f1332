"""From dataset rows to what a loss takes: (dataset name, tokenized features per text column, labels).

Mirrors `SentenceTransformerDataCollator` + the trainer's prompt handling in ST 3.4: the label is the
first of `label` / `score`; every other column, in column order, is tokenized after prepending its
prompt. Prompts may be one str, {column: str}, {dataset: str} or {dataset: {column: str}}.
When the Pooling module excludes the prompt (`include_prompt=False`), the prompt's token count is
passed as `prompt_length`, as ST does.
Not included: router mappings (v5), image inputs.
"""
import torch

from tinyst.datasets.columns import LABEL_COLUMNS, ROUTING_COLUMNS


def prompt_for(prompts, dataset_name, column):
    """The prompt of one column of one dataset under ST's four prompt layouts, or None."""
    p = prompts
    if isinstance(p, dict) and dataset_name in p:
        p = p[dataset_name]
    if isinstance(p, dict):
        p = p.get(column)
    if p is not None and not isinstance(p, str):
        raise ValueError(f"prompt for column {column!r} must be a str, got {type(p).__name__}")
    return p


def label_tensor(values: list, column: str) -> torch.Tensor:
    if any(v is None for v in values):
        raise ValueError(f"label column {column!r} holds None at row {values.index(None)} of the batch")
    if any(isinstance(v, str) for v in values):
        raise ValueError(f"label column {column!r} holds strings (e.g. {next(v for v in values if isinstance(v, str))!r}); "
                         "map them to integer class ids first")
    labels = torch.tensor(values)  # floats -> float32, ints -> int64, lists -> 2-D, as ST's collator
    if labels.dtype.is_floating_point and not torch.isfinite(labels).all():
        raise ValueError(f"label column {column!r} holds NaN or infinite values")
    return labels


class Collator:
    def __init__(self, model, prompts=None):
        self.model = model
        self.prompts = prompts
        self.include_prompt = all(getattr(m, "include_prompt", True) for m in model)
        self._prompt_lengths = {}

    def prompt_length(self, prompt: str) -> int:
        if prompt not in self._prompt_lengths:  # token count minus the trailing [SEP], as ST
            self._prompt_lengths[prompt] = self.model.tokenize([prompt])["input_ids"].shape[-1] - 1
        return self._prompt_lengths[prompt]

    def __call__(self, rows: dict, dataset_name=None):
        """rows: {column: list of values} for one batch -> (features list, labels or None)."""
        columns = [c for c in rows if c not in ROUTING_COLUMNS]
        label_col = next((c for c in LABEL_COLUMNS if c in columns), None)
        labels = label_tensor(rows[label_col], label_col) if label_col else None
        features = []
        for col in columns:
            if col in LABEL_COLUMNS:
                continue
            texts = rows[col]
            bad = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
            if bad is not None:
                raise ValueError(f"column {col!r}: row {bad} of the batch is {type(texts[bad]).__name__} "
                                 f"({texts[bad]!r:.40}), expected str")
            prompt = prompt_for(self.prompts, dataset_name, col)
            if prompt:
                texts = [prompt + t for t in texts]
            f = self.model.tokenize(texts)
            if prompt and not self.include_prompt:
                f["prompt_length"] = self.prompt_length(prompt)
            features.append(f)
        return features, labels
