"""Process-group helpers that turn into single-process no-ops when no group is initialised.

`all_gather_with_grad` is what lets in-batch-negative losses use every rank's rows as candidates:
forward concatenates all ranks' rows, backward sums each row's gradient over the ranks whose
losses used it and hands every rank back the slice it owns. With DDP's gradient averaging on top,
a loss that gathers its candidates gets exactly the gradient of one process holding the union batch.
Mirrors the role of `torch.distributed.nn.all_gather` in ST >= 5.1 (`gather_across_devices`), written
as an own autograd Function over the public `dist.all_gather` / `dist.all_reduce`.
The trainer's process-group setup from torchrun's env vars (`setup`, `barrier`, ...) sits at the end.
Not included: uneven gathers (every rank must hold the same number of rows: drop_last).
"""
import torch
import torch.distributed as dist


def is_distributed() -> bool:
    """True when a process group is initialised (the helpers below then talk to the other ranks)."""
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    return rank() == 0


class _AllGatherWithGrad(torch.autograd.Function):
    """Forward: every rank's (N, ...) rows, concatenated in rank order. Backward: all ranks' losses
    may have touched every gathered row, so sum the incoming gradients over ranks, keep our slice."""

    @staticmethod
    def forward(ctx, t):
        parts = [torch.empty_like(t) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, t.contiguous())
        ctx.rows = t.shape[0]
        return torch.cat(parts)  # (W * N, ...)

    @staticmethod
    def backward(ctx, grad):
        grad = grad.contiguous()  # (W * N, ...)
        dist.all_reduce(grad)  # SUM: gloo has no AVG, and a sum is what the chain rule asks for
        start = dist.get_rank() * ctx.rows
        return grad[start : start + ctx.rows]  # (N, ...)


def all_gather_with_grad(t: torch.Tensor) -> torch.Tensor:
    """(N, ...) on every rank -> (W * N, ...) with gradient flowing back to the owning rank.
    Identity without a process group, so single-process code needs no branches."""
    if world_size() == 1:
        return t
    counts = [torch.zeros(1, dtype=torch.long, device=t.device) for _ in range(world_size())]
    dist.all_gather(counts, torch.tensor([t.shape[0]], device=t.device))
    counts = [int(c) for c in counts]
    if len(set(counts)) != 1:
        # subtle: all_gather needs equal shapes; unequal ones would hang or garble rows
        raise ValueError(f"all_gather_with_grad needs the same number of rows on every rank, got {counts} "
                         "(use drop_last=True so every rank gets full batches)")
    return _AllGatherWithGrad.apply(t)


def reduce_mean(t: torch.Tensor) -> torch.Tensor:
    """Mean of a (logged) value over ranks, as SUM / world_size (ReduceOp.AVG is NCCL-only on older
    torch). No gradient; identity without a process group."""
    if world_size() == 1:
        return t.detach()
    t = t.detach().clone()
    dist.all_reduce(t)
    return t / world_size()


# -- process group setup for the trainer (torchrun sets RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR) --
def setup(timeout_s: float = 1800) -> bool:
    """Join the process group that torchrun describes (gloo on CPU, nccl on CUDA); a plain `python`
    run (no RANK/WORLD_SIZE in the environment) stays single-process. Returns True when distributed."""
    import datetime
    import os

    if is_distributed():
        return True
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or "RANK" not in os.environ:
        return False
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(local_rank())
    dist.init_process_group(backend=backend, timeout=datetime.timedelta(seconds=timeout_s))
    return True


def local_rank() -> int:
    import os

    return int(os.environ.get("LOCAL_RANK", "0"))


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def broadcast_object(obj, src: int = 0):
    """Send a picklable object (e.g. evaluator metrics) from `src` to every rank."""
    if not is_distributed():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]
