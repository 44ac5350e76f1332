"""The memory-lean training ops (tinyst/models/ops.py) and tinyst's AdamW (trainer/optim.py) against
the stock torch ops they replace: same forward numbers and dropout draws, same gradients to float
rounding, much less kept for backward; AdamW/Schedule equal torch.optim.AdamW/LambdaLR step by step."""
import pytest
import torch
import torch.nn.functional as F

from tiny_models import make_tiny_model_dir
from tinyst import SentenceTransformer
from tinyst.models import ops
from tinyst.trainer.optim import AdamW, Schedule, lr_factor


def stock(monkeypatch):
    monkeypatch.setattr(ops, "lean", lambda x: False)


def packed_qkv(seed=0, B=3, T=6, H=2, Dh=4, lengths=(6, 4, 2)):
    g = torch.Generator().manual_seed(seed)
    mask = torch.tensor([[1] * n + [0] * (T - n) for n in lengths])  # (B, T)
    idx = mask.reshape(-1).nonzero().squeeze(1)
    N = int(mask.sum())
    q, k, v = (torch.randn(N, H * Dh, generator=g, dtype=torch.float64) for _ in range(3))
    bias = (1.0 - mask[:, None, None, :].double()) * -1e9 + torch.randn(1, H, T, T, generator=g, dtype=torch.float64)
    return q, k, v, bias, (idx, B, T), H


def test_lean_attention_gradcheck():
    """The hand-written backward of attention (recomputed probabilities, bool dropout mask, padding) is
    the derivative of its forward, for q, k, v and a learned bias (float64 finite differences)."""
    q, k, v, bias, pack, H = packed_qkv()
    inputs = [t.clone().requires_grad_() for t in (q, k, v, bias)]

    def f(q, k, v, bias):
        torch.manual_seed(5)  # the same dropout mask at every evaluation
        return ops._Attention.apply(q, k, v, bias, 0.2, pack, H)

    assert torch.autograd.gradcheck(f, inputs)


def test_lean_attention_equals_sdpa(monkeypatch):
    """Same output and dropout draws as F.scaled_dot_product_attention (its CPU math path), same grads."""
    q, k, v, bias, pack, H = (t.float() if torch.is_tensor(t) else t for t in packed_qkv(1))
    runs = []
    for use_stock in (False, True):
        if use_stock:
            stock(monkeypatch)
        x = [t.clone().requires_grad_() for t in (q, k, v, bias)]
        torch.manual_seed(3)
        y = ops.attention(*x, 0.1, pack, H)
        runs.append((y, torch.autograd.grad(y.square().sum(), x)))
    (y1, g1), (y2, g2) = runs
    assert torch.equal(y1, y2)
    for a, b in zip(g1, g2):
        assert (a - b).abs().max() <= 1e-5 * b.abs().max()


def test_act_linear_gradcheck():
    lin = torch.nn.Linear(16, 5).double()
    h = torch.randn(9, 16, dtype=torch.float64, requires_grad=True)
    for act in (F.gelu, lambda x: F.gelu(x, approximate="tanh"), F.relu):
        assert torch.autograd.gradcheck(lambda h, w, b: ops._ActLinear.apply(h, w, b, act), (h, lin.weight, lin.bias))


def test_dropout_same_draws():
    x = torch.randn(50, 30)
    torch.manual_seed(1)
    a = ops.Dropout(0.1)(x)
    torch.manual_seed(1)
    assert torch.equal(a, F.dropout(x, 0.1, True))


@pytest.mark.parametrize("arch", ["bert", "mpnet"])
def test_training_grads_equal_stock_and_keep_less(arch, tmp_path, monkeypatch):
    """A train-mode forward + backward of a tiny model (padding, dropout on): the lean ops give the stock
    ops' loss and gradients (<= 1e-5 relative) and keep under half as many bytes for backward."""
    path = make_tiny_model_dir(tmp_path, arch, hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1)
    texts = ["a short one", "a much longer sentence with quite a few more words in it", "mid length text here"]
    results = []
    for use_stock in (False, True):
        if use_stock:
            stock(monkeypatch)
        model = SentenceTransformer(str(path), device="cpu").train()
        features = model.tokenize(texts)
        kept = {}

        def keep(t):
            kept[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
            return t

        torch.manual_seed(0)
        params = {p.untyped_storage().data_ptr() for p in model.parameters()}
        with torch.autograd.graph.saved_tensors_hooks(keep, lambda t: t):
            loss = model(features)["sentence_embedding"].square().sum()
        loss.backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        results.append((loss.item(), grads, sum(b for k, b in kept.items() if k not in params)))
    (l1, g1, kept1), (l2, g2, kept2) = results
    assert l1 == pytest.approx(l2, rel=1e-6)
    assert g1.keys() == g2.keys()
    for n in g1:
        assert (g1[n] - g2[n]).abs().max() <= 1e-5 * g2[n].abs().max() + 1e-8, n  # (k.bias: 0 up to rounding)
    assert kept1 < 0.5 * kept2, (kept1, kept2)


def test_adamw_equals_torch_adamw_and_schedule_equals_lambdalr():
    """Two decay groups, 6 steps with a warmup-linear schedule: identical weights, lrs and states, and the
    state_dicts load into each other."""
    torch.manual_seed(0)
    a = [torch.nn.Parameter(torch.randn(5, 3)), torch.nn.Parameter(torch.randn(3))]
    b = [torch.nn.Parameter(t.detach().clone()) for t in a]

    def groups(ps):
        return [{"params": [ps[0]], "weight_decay": 0.01}, {"params": [ps[1]], "weight_decay": 0.0}]

    factor = lambda step: lr_factor(step, 6, 2, "linear")  # noqa: E731
    oa = AdamW(groups(a), lr=1e-2, betas=(0.9, 0.98), eps=1e-6)
    ob = torch.optim.AdamW(groups(b), lr=1e-2, betas=(0.9, 0.98), eps=1e-6, fused=True)
    sa, sb = Schedule(oa, factor), torch.optim.lr_scheduler.LambdaLR(ob, factor)
    for _ in range(6):
        for x, y in zip(a, b):
            x.grad = torch.randn_like(x)
            y.grad = x.grad.clone()
        oa.step(), ob.step(), sa.step(), sb.step()
        assert sa.get_last_lr() == pytest.approx(sb.get_last_lr(), rel=1e-12)
        oa.zero_grad(), ob.zero_grad()
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert all(p.grad is None for p in a)
    assert int(oa.state[a[0]]["step"]) == 6
    ob.load_state_dict(oa.state_dict())
    oa.load_state_dict(ob.state_dict())
    with pytest.raises(ValueError, match="parameter groups of sizes"):
        AdamW([{"params": a}], lr=1e-3).load_state_dict(ob.state_dict())
    with pytest.raises(ValueError, match="Invalid beta parameter at index 1: 1.0"):
        AdamW(groups(a), lr=1e-3, betas=(0.9, 1.0))


def test_training_does_not_import_dynamo(tmp_path):
    """torch.optim.Optimizer's first call imports torch._dynamo (~1 s, ~70 MB); the trainer never does."""
    import subprocess
    import sys

    path = make_tiny_model_dir(tmp_path, "bert")
    code = f"""
import sys, tinyst
from tinyst import Dataset, SentenceTransformer, SentenceTransformerTrainer, SentenceTransformerTrainingArguments
from tinyst.losses import MultipleNegativesRankingLoss
m = SentenceTransformer({str(path)!r}, device="cpu")
ds = Dataset.from_dict({{"a": ["x y", "z w", "q r", "s t"], "b": ["y", "w", "r", "t"]}})
args = SentenceTransformerTrainingArguments(output_dir={str(tmp_path / 'out')!r}, max_steps=2,
    per_device_train_batch_size=2, save_strategy="no", report_to="none", disable_tqdm=True)
SentenceTransformerTrainer(model=m, args=args, train_dataset=ds, loss=MultipleNegativesRankingLoss(m)).train()
print("torch._dynamo" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False"


def test_return_freed_memory_to_os():
    import sys

    assert ops.return_freed_memory_to_os() == sys.platform.startswith("linux")


@pytest.mark.parametrize("act", [None, "gelu", "gelu_new", "relu", "silu"])
@pytest.mark.parametrize("prepack", [False, True])
def test_onednn_inference_linear_equals_f_linear(act, prepack):
    """Inside onednn_inference with autograd off, `linear` (oneDNN matmul + fused activation, plain or
    prepacked weights) gives F.linear's numbers to float rounding; with autograd on or outside, it is F.linear
    itself; on exit the weights' copies are gone."""
    torch.manual_seed(0)
    layer, x = torch.nn.Linear(48, 96), torch.randn(37, 48)
    ref = layer(x) if act is None else ops.ACTIVATIONS[act](layer(x))
    with ops.onednn_inference(layer, prepack=prepack):
        with torch.no_grad():
            y = ops.linear(x, layer, act)
        assert hasattr(layer, "onednn_weight") == ops.onednn_available()
        assert (y - ref).abs().max() <= 1e-5 * ref.abs().max()
        y = ops.linear(x, layer, act)
        assert torch.equal(y, ref) and y.requires_grad
    assert not hasattr(layer, "onednn_weight")
    with torch.no_grad():
        assert torch.equal(ops.linear(x, layer, act), ref)  # outside: F.linear, bit for bit (GradCache relies on it)


def test_sparse_embedding_grads_equal_dense(tmp_path):
    """Two forwards (two text columns) + backward inside sparse_embedding_grads: every gradient equals the
    dense-embedding run's, the embedding gradients come out dense, and the layers are dense again after."""
    path = make_tiny_model_dir(tmp_path, "bert")
    model = SentenceTransformer(str(path), device="cpu").train()
    a, b = model.tokenize(["one two three", "four five"]), model.tokenize(["two two six", "five"])
    runs = []
    for sparse in (False, True):
        model.zero_grad(set_to_none=True)
        torch.manual_seed(0)
        with ops.sparse_embedding_grads(model, enabled=sparse):
            emb = [model(f)["sentence_embedding"] for f in (a, b)]
            (emb[0] * emb[1]).sum().backward()
            assert model[0].auto_model.emb.word.weight.grad.is_sparse == sparse  # only the batch's rows inside
        runs.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    layers = [m for m in model.modules() if isinstance(m, torch.nn.Embedding)]
    assert layers and not any(m.sparse for m in layers)
    dense, sparse = runs
    assert dense.keys() == sparse.keys()
    for n in dense:
        assert not sparse[n].is_sparse, n
        assert torch.allclose(sparse[n], dense[n], atol=1e-6), n
