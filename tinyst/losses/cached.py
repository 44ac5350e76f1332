"""GradCache: the full-batch gradient of an in-batch loss with the activation memory of one mini-batch.

The loss couples every row with every other, so it cannot be split into independent mini-batches;
but it only touches the encoder through the (B, D) embeddings. So:
  1. embed every column in mini-batches without a graph, remembering each mini-batch's RNG state;
  2. compute the loss on those embeddings (as leaves) and its gradient d loss / d embedding;
  3. when the caller runs backward, re-embed each mini-batch with a graph under the same RNG state
     (same dropout masks, so the same embeddings) and push the cached gradient through it; the
     resulting parameter gradients leave through an autograd node, so DDP sees an ordinary backward.
Step 3 is the chain rule applied one mini-batch at a time: the parameter gradient equals the
plain loss's, up to float summation order. `CachedLossMixin` turns a loss with
`compute_loss_from_embeddings` into its cached twin; wrappers (Matryoshka) pass their own loss_fn.
Mirrors Gao et al. 2021 (GradCache) as in ST's Cached*Loss (RandContext; ST uses a backward hook).
Not included: the progress bar; the loss is computed on the whole (B, C) score matrix at once
(ST additionally chunks it by anchor mini-batch).
"""
import warnings

import torch


class RngState:
    """CPU (+ CUDA, for the device the inputs live on) generator states, captured now and
    re-installed inside `with` (the global RNG is restored afterwards, as if nothing had run)."""

    def __init__(self, device: torch.device):
        self.device = device if device.type == "cuda" else None
        self.cpu = torch.get_rng_state()
        self.cuda = torch.cuda.get_rng_state(self.device) if self.device is not None else None

    def __enter__(self):
        self._fork = torch.random.fork_rng(devices=[self.device] if self.device is not None else [])
        self._fork.__enter__()
        torch.set_rng_state(self.cpu)
        if self.device is not None:
            torch.cuda.set_rng_state(self.cuda, self.device)

    def __exit__(self, *exc):
        return self._fork.__exit__(*exc)


def batch_rows(features: dict) -> int:
    return next(v.shape[0] for v in features.values() if isinstance(v, torch.Tensor) and v.dim() > 0)


def split(features: dict, size: int) -> list[dict]:
    """Row slices of a feature dict; padding stays as is, so each row's tokens are unchanged."""
    n = batch_rows(features)
    return [{k: v[b : b + size] if isinstance(v, torch.Tensor) else v for k, v in features.items()}
            for b in range(0, n, size)]


def device_of(features: dict) -> torch.device:
    return next(v.device for v in features.values() if isinstance(v, torch.Tensor))


@torch.no_grad()
def embed_no_grad(model, features: dict, size: int | None = None) -> torch.Tensor:
    """(B, D) sentence embeddings without a graph, `size` rows at a time (all at once if None)."""
    chunks = split(features, size) if size else [features]
    return torch.cat([model(f)["sentence_embedding"] for f in chunks])  # (B, D)


def grad_cache(model, sentence_features: list[dict], loss_fn, mini_batch_size: int) -> torch.Tensor:
    """loss_fn(list of (B, D) embeddings) -> scalar, evaluated GradCache-style (steps 1-3 above)."""
    # Step 1: embeddings without a graph, one RNG snapshot per mini-batch.
    reps, states = [], []
    for features in sentence_features:
        col_reps, col_states = [], []
        for mb in split(features, mini_batch_size):
            col_states.append(RngState(device_of(mb)))
            with torch.no_grad():
                col_reps.append(model(mb)["sentence_embedding"])  # (m, D)
        reps.append(col_reps)
        states.append(col_states)
    leaves = [torch.cat(col).requires_grad_(torch.is_grad_enabled()) for col in reps]  # K x (B, D)
    if not torch.is_grad_enabled():  # evaluation: the value is all we need
        return loss_fn(leaves)

    # Step 2: the loss and d loss / d embeddings; the encoder is not involved.
    with torch.enable_grad():
        loss = loss_fn(leaves)
    grads = torch.autograd.grad(loss, leaves, allow_unused=True)
    grads = [torch.zeros_like(x) if g is None else g for x, g in zip(leaves, grads)]

    # Step 3: a node whose backward replays the encoder mini-batch by mini-batch and hands autograd the
    # parameter gradients, so they accumulate (and DDP's hooks fire) as for any other loss.
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:  # a frozen encoder: nothing to replay
        return loss.detach()
    # subtle: backward runs outside the caller's autocast block, so step 1's precision is replayed explicitly
    device_type = device_of(sentence_features[0]).type
    amp = torch.autocast(device_type, dtype=torch.get_autocast_dtype(device_type),
                         enabled=torch.is_autocast_enabled(device_type))

    def replay(grad_output):
        totals = [None] * len(params)
        with torch.enable_grad():
            for features, col_states, grad in zip(sentence_features, states, grads):
                b = 0
                for mb, state in zip(split(features, mini_batch_size), col_states):
                    with state, amp:  # same dropout masks and precision as in step 1
                        emb = model(mb)["sentence_embedding"]  # (m, D)
                    # chain rule: d loss / d theta = (d loss / d emb) . (d emb / d theta), scaled like the caller's loss
                    upstream = grad[b : b + emb.shape[0]] * grad_output  # (m, D)
                    parts = torch.autograd.grad(emb, params, upstream, allow_unused=True)
                    totals = [t if g is None else g if t is None else t + g for t, g in zip(totals, parts)]
                    b += emb.shape[0]
        return totals

    return _Replay.apply(loss.detach(), replay, *params)


class _Replay(torch.autograd.Function):
    """Forward: the loss value, computed already. Backward: `replay`'s parameter gradients."""

    @staticmethod
    def forward(ctx, value, replay, *params):
        ctx.replay = replay
        return value.clone()

    @staticmethod
    def backward(ctx, grad_output):
        return None, None, *ctx.replay(grad_output)


class CachedLossMixin:
    """Mixed in before a plain in-batch loss: same math, GradCache memory. Needs `self.mini_batch_size`."""

    def set_mini_batch_size(self, mini_batch_size: int, show_progress_bar: bool) -> None:
        if not isinstance(mini_batch_size, int) or isinstance(mini_batch_size, bool) or mini_batch_size < 1:
            raise ValueError(f"{type(self).__name__} expects mini_batch_size to be a positive int, "
                             f"got {mini_batch_size!r}")
        if show_progress_bar:
            warnings.warn(f"{type(self).__name__}: tinyst has no progress bar; show_progress_bar is ignored")
        self.mini_batch_size = mini_batch_size
        self.show_progress_bar = show_progress_bar

    def forward(self, sentence_features, labels=None) -> torch.Tensor:
        self.check_inputs(sentence_features, labels)
        return self.forward_with(sentence_features, labels, self.compute_loss_from_embeddings)

    def forward_with(self, sentence_features, labels, loss_fn) -> torch.Tensor:
        """Drive the cache with any `loss_fn(embeddings, labels, **context)`; MatryoshkaLoss passes its own."""
        sentence_features = list(sentence_features)

        def full_loss(embeddings):
            # extra inputs (GIST's guide embeddings) come after the model's pass, as in the plain loss,
            # so both consume the RNG in the same order
            context = self.loss_context(sentence_features) if hasattr(self, "loss_context") else {}
            return loss_fn(embeddings, labels, **context)

        return grad_cache(self.model, sentence_features, full_loss, self.mini_batch_size)
