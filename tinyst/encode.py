"""`SentenceTransformer.encode`: texts in, embeddings out, in inference mode.

Mirrors `SentenceTransformer.encode` v3.4: a prompt (explicit, by name, or the default) is
prepended; texts are sorted by token length and cut into token-budget batches (`plan_batches`), the
input order is restored at the end; then optional truncation (Matryoshka), L2 normalisation, quantization.
Not included: multi-process pools, chunk_size, encode_query/encode_document (v5).
"""
import time
import warnings

import numpy as np
import torch
import torch.nn.functional as F

from tinyst.models.ops import onednn_inference
from tinyst.util import quantize_embeddings


def check_texts(sentences) -> tuple[list, bool]:
    """Validate encode's input; returns (list of texts, whether a single str came in)."""
    if sentences is None:
        raise TypeError("encode() got None; expected a str or a list of str")
    if isinstance(sentences, str):
        return [sentences], True
    if not hasattr(sentences, "__len__") or isinstance(sentences, dict):
        raise TypeError(f"encode() expects a str or a list of str, got {type(sentences).__name__}")
    sentences = list(sentences)
    if not sentences:
        raise ValueError("encode() got an empty list of sentences")
    for i, s in enumerate(sentences):
        ok = isinstance(s, str) or (isinstance(s, (tuple, list)) and len(s) == 2 and all(isinstance(x, str) for x in s))
        if not ok:
            raise TypeError(f"encode(): item {i} is {type(s).__name__} ({s!r:.40}); expected str")
    return sentences, False


def resolve_prompt(model, prompt, prompt_name):
    if prompt is not None:
        if prompt_name is not None:
            warnings.warn("encode() got both prompt and prompt_name; using prompt")
        return prompt
    if prompt_name is not None:
        if prompt_name not in model.prompts:
            raise ValueError(f"prompt_name {prompt_name!r} not found; the model has prompts {sorted(model.prompts)}")
        return model.prompts[prompt_name]
    if model.default_prompt_name is not None:
        return model.prompts.get(model.default_prompt_name)
    return None


class Progress:
    """A one-line progress report on stderr (no tqdm): done/total, rate and time left."""

    def __init__(self, total: int, label: str, enabled: bool):
        self.total, self.label, self.enabled, self.t0 = total, label, enabled, time.time()

    def update(self, done: int) -> None:
        if not self.enabled:
            return
        import sys

        dt = max(time.time() - self.t0, 1e-9)
        eta = (self.total - done) * dt / max(done, 1)
        end = "\n" if done >= self.total else ""
        sys.stderr.write(f"\r{self.label}: {done}/{self.total} [{done / dt:.1f}/s, {eta:.0f}s left]{end}")
        sys.stderr.flush()


def plan_batches(model, sentences, batch_size: int) -> tuple:
    """Order texts longest first (in tokens) and cut the order into batches: (order, [(start, stop)]).

    ST sorts by characters and cuts every batch_size texts. Here every batch holds up to
    batch_size x (longest text's tokens) tokens, the size of the first (largest) padded batch, so
    memory stays within what batch_size allows, short texts share bigger matrix products, and
    texts of equal length share a batch (little padding). Results do not depend on the batching.
    """
    first = model[0] if len(model) else None
    if hasattr(first, "token_lengths"):
        lengths = np.asarray(first.token_lengths(sentences))
    else:
        lengths = np.asarray([len(s) if isinstance(s, str) else sum(map(len, s)) for s in sentences])
    order = np.argsort(-lengths, kind="stable")
    budget = batch_size * max(int(lengths[order[0]]), 1)
    batches, start = [], 0
    while start < len(order):
        stop = min(len(order), start + max(batch_size, budget // max(int(lengths[order[start]]), 1)))
        batches.append((start, stop))
        start = stop
    return order, batches


def per_text(out: dict, output_value, truncate_dim, normalize: bool, to_cpu: bool) -> list:
    """One batch's model output -> one entry per text, in the batch's order."""
    if output_value == "token_embeddings":
        lengths = out["attention_mask"].sum(1).tolist()  # right padding: keep the first n rows
        return [tok[:n] for tok, n in zip(out["token_embeddings"], lengths)]
    if output_value is None:
        rows = out["attention_mask"].shape[0]
        return [{k: v[i] for k, v in out.items() if isinstance(v, torch.Tensor) and v.dim() > 0} for i in range(rows)]
    emb = out["sentence_embedding"].detach()  # (b, D)
    if truncate_dim:
        emb = emb[..., :truncate_dim]  # (b, d)
    if normalize:
        emb = F.normalize(emb, p=2, dim=1)
    return list(emb.float().cpu() if to_cpu else emb)


def encode(model, sentences, prompt_name=None, prompt=None, batch_size=32, show_progress_bar=None,
           output_value="sentence_embedding", precision="float32", convert_to_numpy=True, convert_to_tensor=False,
           device=None, normalize_embeddings=False, truncate_dim=None):
    if output_value not in ("sentence_embedding", "token_embeddings", None):
        raise ValueError(f"output_value must be 'sentence_embedding', 'token_embeddings' or None, got {output_value!r}")
    if precision not in ("float32", "int8", "uint8", "binary", "ubinary"):
        raise ValueError(f"precision must be float32, int8, uint8, binary or ubinary, got {precision!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    sentences, single = check_texts(sentences)
    model.eval()  # as ST: encode leaves the model in eval mode
    if device is not None:
        model.to(device)
    prompt = resolve_prompt(model, prompt, prompt_name)
    extra = {}
    if prompt:
        sentences = [prompt + s for s in sentences]
        extra["prompt_length"] = model.tokenize([prompt])["input_ids"].shape[-1] - 1  # minus the trailing [SEP]
    truncate_dim = truncate_dim if truncate_dim is not None else model.truncate_dim

    order, batches = plan_batches(model, sentences, batch_size)
    progress = Progress(len(sentences), "encode", bool(show_progress_bar))
    results = []
    with onednn_inference(model, prepack=len(batches) >= 8):  # packing pays for itself after a few batches
        for start, stop in batches:
            batch = [sentences[i] for i in order[start:stop]]
            features = {k: v.to(model.device) for k, v in model.tokenize(batch).items()}
            with torch.no_grad():
                out = model({**features, **extra})
            results.extend(per_text(out, output_value, truncate_dim, normalize_embeddings,
                                    to_cpu=convert_to_numpy and not convert_to_tensor))
            progress.update(stop)

    restored = [None] * len(sentences)
    for pos, i in enumerate(order):
        restored[i] = results[pos]
    if output_value != "sentence_embedding":
        return restored[0] if single else restored
    if precision != "float32":
        quantized = quantize_embeddings(torch.stack(restored), precision)
        restored = quantized if not convert_to_tensor else torch.from_numpy(quantized)
    if convert_to_tensor:
        out = restored if isinstance(restored, torch.Tensor) else torch.stack(restored)
    elif convert_to_numpy:
        out = restored if isinstance(restored, np.ndarray) else torch.stack(restored).numpy()
    else:
        out = [torch.from_numpy(e) for e in restored] if isinstance(restored, np.ndarray) else restored
    return out[0] if single else out
