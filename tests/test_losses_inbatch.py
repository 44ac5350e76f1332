"""In-batch-negative losses, their Cached twins, MegaBatchMargin, ContrastiveTension and Matryoshka:
value and parameter gradients against sentence-transformers 3.4.1 on real STSb / SICK / MSRP text
(shared L3 model, tiny random BERT / MPNet), GradCache equivalences with dropout on, input checks.

Gradient comparison: per parameter tensor, ||g_tinyst - g_st|| / ||g_st||, except that tensors whose
true gradient is ~0 (attention key biases: softmax ignores a per-row shift) are measured against
1e-3 of the whole gradient's norm instead of their own float-noise-sized norm.
"""
import json
import random
import shutil
import warnings

import pytest
import torch

import tinyst
from tinyst.losses.cached import split
from tinyst.losses.cached_gist_embed import CachedGISTEmbedLoss
from tinyst.losses.cached_multiple_negatives_ranking import CachedMultipleNegativesRankingLoss
from tinyst.losses.cached_multiple_negatives_symmetric_ranking import CachedMultipleNegativesSymmetricRankingLoss
from tinyst.losses.contrastive_tension import ContrastiveTensionLossInBatchNegatives
from tinyst.losses.gist_embed import GISTEmbedLoss
from tinyst.losses.matryoshka import MatryoshkaLoss
from tinyst.losses.mega_batch_margin import MegaBatchMarginLoss
from tinyst.losses.multiple_negatives_ranking import MultipleNegativesRankingLoss
from tinyst.losses.multiple_negatives_symmetric_ranking import MultipleNegativesSymmetricRankingLoss
from tinyst.models.bert import expand_key_table
from tinyst.models.weights import KEY_TABLES
from tiny_models import make_tiny_model_dir

st = pytest.importorskip("sentence_transformers")
stl = st.losses
warnings.filterwarnings("ignore", message=".*pooler.*")
TOL = 1e-5


# -- data: real text from ../shared ------------------------------------------------------------------
def read_tsv(path, skip_header=False):
    lines = path.read_text(encoding="utf-8-sig").splitlines()
    return [line.split("\t") for line in lines[1 if skip_header else 0 :]]


@pytest.fixture(scope="module")
def stsb(data_dir):
    """(sentence1, sentence2, score/5) rows of STSb dev."""
    return [(r[5], r[6], float(r[4]) / 5) for r in read_tsv(data_dir / "stsb" / "sts-dev.csv")]


@pytest.fixture(scope="module")
def sick_triplets(data_dir):
    """(anchor, entailed, contradicted) triplets from all SICK splits."""
    ent, con = {}, {}
    for split_file in ("SICK_train.txt", "SICK_trial.txt", "SICK_test_annotated.txt"):
        for r in read_tsv(data_dir / "sick" / split_file, skip_header=True):
            {"ENTAILMENT": ent, "CONTRADICTION": con}.get(r[4], {}).setdefault(r[1], r[2])
    return [(a, ent[a], con[a]) for a in ent if a in con]


@pytest.fixture(scope="module")
def msrp_pairs(data_dir):
    """Paraphrase pairs (quality 1) from MSRP train."""
    return [(r[3], r[4]) for r in read_tsv(data_dir / "msrp" / "msr-para-train.tsv", skip_header=True) if r[0] == "1"]


def columns(rows, n, start=0, k=None):
    """Rows -> list of text columns (first k fields), n rows from `start`."""
    rows = rows[start : start + n]
    k = k or len(rows[0])
    return [[r[i] for r in rows] for i in range(k)]


# -- models ---------------------------------------------------------------------------------------------
def load_pair(path):
    return st.SentenceTransformer(str(path), device="cpu").eval(), tinyst.SentenceTransformer(str(path), device="cpu").eval()


@pytest.fixture(scope="module")
def l3(l3_path):
    return load_pair(l3_path)


@pytest.fixture(scope="module")
def l3_nodrop(l3_path, tmp_path_factory):
    """L3 with dropout 0 in its config: train mode without randomness (MegaBatchMargin forces train mode in ST)."""
    out = tmp_path_factory.mktemp("l3nodrop") / "model"
    shutil.copytree(l3_path, out)
    cfg = json.loads((out / "config.json").read_text())
    cfg.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    (out / "config.json").write_text(json.dumps(cfg))
    return load_pair(out)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    return {arch: load_pair(make_tiny_model_dir(root, arch, seed=3)) for arch in ("bert", "mpnet")}


# -- comparison helpers -----------------------------------------------------------------------------
def hub_name(model, name):
    """tinyst parameter name -> the ST/HF name of the same tensor."""
    prefix = "0.auto_model."
    if not name.startswith(prefix) or not hasattr(model[0], "model_type"):
        return name
    enc = model[0].auto_model
    inverse = {ours: hub for hub, ours in expand_key_table(KEY_TABLES[enc.model_type], enc.config.num_hidden_layers).items()}
    module, _, leaf = name[len(prefix) :].rpartition(".")
    return f"{prefix}{inverse[module]}.{leaf}"


def grads(model):
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


def grad_rel(g_ts: dict, g_st: dict) -> float:
    """Worst per-tensor relative gradient difference (see the module docstring for the floor)."""
    assert g_ts and len(g_ts) == len(g_st), (len(g_ts), len(g_st))
    total = torch.sqrt(sum((g.double() ** 2).sum() for g in g_st.values()))
    worst = 0.0
    for name, g in g_ts.items():
        ref = g_st[name].double()
        worst = max(worst, ((g.double() - ref).norm() / torch.clamp(ref.norm(), min=1e-3 * total)).item())
    return worst


def run(loss, models, cols, labels=None):
    """loss(features, labels).backward() from zero grads -> (value, {model index: grads})."""
    for m in models:
        m.zero_grad(set_to_none=True)
    features = [models[0].tokenize(c) for c in cols]
    value = loss(features, labels)
    value.backward()
    return value.item(), [grads(m) for m in models]


def compare(st_loss, ts_loss, st_models, ts_models, cols, labels=None, tol=TOL):
    """Run both losses on the same texts; assert value and gradients within tol; return the diffs."""
    v_st, g_st = run(st_loss, st_models, cols, labels)
    v_ts, g_ts = run(ts_loss, ts_models, cols, labels)
    value_rel = abs(v_ts - v_st) / max(abs(v_st), 1e-12)
    worst = max(grad_rel({hub_name(tm, n): g for n, g in gt.items()}, gs)
                for tm, gt, gs in zip(ts_models, g_ts, g_st))
    assert value_rel <= tol and worst <= tol, (v_st, v_ts, value_rel, worst)
    return value_rel, worst


# -- parity with ST 3.4.1 -------------------------------------------------------------------------
@pytest.mark.parametrize("data", ["stsb", "sick", "msrp", "sick-dot"])
def test_mnrl_parity(l3, data, stsb, sick_triplets, msrp_pairs):
    """MNRL on pairs / triplets (cosine) and with dot-product, scale 1: value and grads equal ST's."""
    cols = {"stsb": columns(stsb, 12, k=2), "sick": columns(sick_triplets, 12), "msrp": columns(msrp_pairs, 12),
            "sick-dot": columns(sick_triplets, 12, start=12)}[data]
    kw = {"similarity_fct": tinyst.util.dot_score, "scale": 1.0} if data.endswith("dot") else {}
    st_kw = {"similarity_fct": st.util.dot_score, "scale": 1.0} if kw else {}
    st_model, ts_model = l3
    compare(stl.MultipleNegativesRankingLoss(st_model, **st_kw), MultipleNegativesRankingLoss(ts_model, **kw),
            [st_model], [ts_model], cols)


@pytest.mark.parametrize("arch", ["bert", "mpnet"])
def test_inbatch_parity_tiny(tiny, arch, sick_triplets):
    """Tiny random BERT / MPNet: MNRL, MNSRL and CachedMNRL equal ST's on SICK triplets."""
    st_model, ts_model = tiny[arch]
    cols = columns(sick_triplets, 10, start=30)
    for st_loss, ts_loss in [
        (stl.MultipleNegativesRankingLoss(st_model), MultipleNegativesRankingLoss(ts_model)),
        (stl.MultipleNegativesSymmetricRankingLoss(st_model), MultipleNegativesSymmetricRankingLoss(ts_model)),
        (stl.CachedMultipleNegativesRankingLoss(st_model, mini_batch_size=3),
         CachedMultipleNegativesRankingLoss(ts_model, mini_batch_size=3)),
    ]:
        compare(st_loss, ts_loss, [st_model], [ts_model], cols)


def test_cmnrl_parity(l3, sick_triplets):
    """CachedMNRL (mini_batch_size 5, B 12: a short last mini-batch) equals ST's CachedMNRL."""
    st_model, ts_model = l3
    compare(stl.CachedMultipleNegativesRankingLoss(st_model, mini_batch_size=5),
            CachedMultipleNegativesRankingLoss(ts_model, mini_batch_size=5), [st_model], [ts_model],
            columns(sick_triplets, 12, start=50))


@pytest.mark.parametrize("data", ["stsb", "sick"])
def test_mnsrl_parity(l3, data, stsb, sick_triplets):
    """MNSRL (negatives used in the anchor->text direction only) equals ST's."""
    cols = columns(stsb, 12, start=40, k=2) if data == "stsb" else columns(sick_triplets, 12, start=70)
    st_model, ts_model = l3
    compare(stl.MultipleNegativesSymmetricRankingLoss(st_model), MultipleNegativesSymmetricRankingLoss(ts_model),
            [st_model], [ts_model], cols)


def test_cmnsrl_parity(l3, msrp_pairs):
    """CachedMNSRL equals ST's CachedMNSRL when one mini-batch holds the batch, and ST's plain MNSRL for
    small mini-batches (where ST 3.4.1's cached version ranks positives against their own mini-batch only)."""
    st_model, ts_model = l3
    cols = columns(msrp_pairs, 12, start=20)
    compare(stl.CachedMultipleNegativesSymmetricRankingLoss(st_model, mini_batch_size=16),
            CachedMultipleNegativesSymmetricRankingLoss(ts_model, mini_batch_size=16), [st_model], [ts_model], cols)
    compare(stl.MultipleNegativesSymmetricRankingLoss(st_model),
            CachedMultipleNegativesSymmetricRankingLoss(ts_model, mini_batch_size=5), [st_model], [ts_model], cols)


@pytest.fixture(scope="module")
def guides(l3_path, tiny):
    """Guide models: an independent copy of L3 (same vocabulary) and the tiny BERT (other vocabulary)."""
    return {"l3": load_pair(l3_path), "tiny": tiny["bert"]}


@pytest.fixture(scope="module")
def fp64(l3_path, tmp_path_factory):
    """L3 and the guides in float64. GIST divides cosines by temperature 0.01, so on a well-trained model
    its fp32 value carries ~1e-5..4e-5 relative float noise in ST itself (measured against the same
    embeddings in fp64); the fp64 runs check the math to 1e-5 with no noise in the way."""
    tiny_bert = make_tiny_model_dir(tmp_path_factory.mktemp("tiny64"), "bert", seed=3)
    pairs = {"model": load_pair(l3_path), "l3": load_pair(l3_path), "tiny": load_pair(tiny_bert)}
    return {k: tuple(m.double() for m in v) for k, v in pairs.items()}


@pytest.mark.parametrize("guide,data", [("l3", "stsb"), ("l3", "sick"), ("tiny", "sick"), ("tiny", "msrp")])
def test_gist_parity(fp64, guide, data, stsb, sick_triplets, msrp_pairs):
    """GISTEmbedLoss with a same-vocabulary and a re-tokenizing guide, pairs and triplets, equals ST's (fp64)."""
    (st_model, ts_model), (st_guide, ts_guide) = fp64["model"], fp64[guide]
    cols = {"stsb": columns(stsb, 12, start=80, k=2), "sick": columns(sick_triplets, 12, start=90),
            "msrp": columns(msrp_pairs, 12, start=40)}[data]
    ts_loss = GISTEmbedLoss(ts_model, ts_guide)
    assert ts_loss.must_retokenize == (guide == "tiny") == stl.GISTEmbedLoss(st_model, st_guide).must_retokenize
    compare(stl.GISTEmbedLoss(st_model, st_guide), ts_loss, [st_model], [ts_model], cols)


def test_gist_parity_fp32(l3, guides, sick_triplets):
    """In fp32, GIST stays within the float noise ST itself shows at temperature 0.01 (5e-5)."""
    st_model, ts_model = l3
    st_guide, ts_guide = guides["tiny"]
    compare(stl.GISTEmbedLoss(st_model, st_guide), GISTEmbedLoss(ts_model, ts_guide), [st_model], [ts_model],
            columns(sick_triplets, 12, start=90), tol=5e-5)


def test_cached_gist_parity(fp64, sick_triplets):
    """CachedGISTEmbedLoss (mini_batch_size 5, re-tokenizing guide) equals ST's CachedGISTEmbedLoss (fp64)."""
    (st_model, ts_model), (st_guide, ts_guide) = fp64["model"], fp64["tiny"]
    compare(stl.CachedGISTEmbedLoss(st_model, st_guide, mini_batch_size=5),
            CachedGISTEmbedLoss(ts_model, ts_guide, mini_batch_size=5), [st_model], [ts_model],
            columns(sick_triplets, 12, start=110))


@pytest.mark.parametrize("mini_batched", [True, False])
def test_mega_batch_margin_parity(l3_nodrop, stsb, mini_batched):
    """MegaBatchMarginLoss, mini-batched (one mini-batch: ST back-propagates only its last one) and not."""
    st_model, ts_model = l3_nodrop
    cols = columns(stsb, 12, start=120, k=2)
    compare(stl.MegaBatchMarginLoss(st_model, use_mini_batched_version=mini_batched, mini_batch_size=16),
            MegaBatchMarginLoss(ts_model, use_mini_batched_version=mini_batched, mini_batch_size=16),
            [st_model], [ts_model], cols)
    assert ts_model.training is False  # ST flips the model to train mode; tinyst restores the mode


def test_mega_batch_margin_mini_batches(l3_nodrop, stsb):
    """With mini-batches of 5, 5 and 2 rows, the gradient is that of sum over mini-batches of each one's mean
    margin loss (hand-derived from full-batch embeddings), and the value is the last mini-batch's, as in ST."""
    st_model, ts_model = l3_nodrop
    cols = columns(stsb, 12, start=120, k=2)
    value, (g,) = run(MegaBatchMarginLoss(ts_model, mini_batch_size=5), [ts_model], cols)
    v_st, _ = run(stl.MegaBatchMarginLoss(st_model, mini_batch_size=5), [st_model], cols)
    assert value == pytest.approx(v_st, rel=TOL)

    ts_model.zero_grad(set_to_none=True)
    a, p = (ts_model(ts_model.tokenize(c))["sentence_embedding"] for c in cols)
    scores = tinyst.util.cos_sim(a, p)  # (12, 12)
    hardest = (scores - 2 * torch.eye(12)).max(dim=1).values
    per_row = torch.relu(0.8 - scores.diagonal()) + torch.relu(hardest - 0.3)  # (12,)
    sum(per_row[b : b + 5].mean() for b in range(0, 12, 5)).backward()
    assert per_row[10:].mean().item() == pytest.approx(value, rel=TOL)
    assert grad_rel(g, grads(ts_model)) <= TOL


def test_contrastive_tension_parity(l3_path, stsb):
    """ContrastiveTensionLossInBatchNegatives: value and grads of both encoders and of logit_scale equal ST's."""
    st_model, ts_model = load_pair(l3_path)
    st_loss, ts_loss = stl.ContrastiveTensionLossInBatchNegatives(st_model), ContrastiveTensionLossInBatchNegatives(ts_model)
    st_loss.model1.eval(), ts_loss.model1.eval()
    texts = [r[0] for r in stsb[150:162]]
    compare(st_loss, ts_loss, [st_loss.model2, st_loss.model1], [ts_loss.model2, ts_loss.model1], [texts, texts])
    assert ts_loss.logit_scale.grad.item() == pytest.approx(st_loss.logit_scale.grad.item(), rel=TOL)


@pytest.mark.parametrize("inner", ["mnrl", "cosent", "cmnrl", "cmnsrl", "gist", "cgist"])
def test_matryoshka_parity(l3, fp64, inner, stsb, sick_triplets):
    """MatryoshkaLoss([384, 128, 32], weights) around plain, label-taking, cached and guided losses equals ST's
    (ST patches model.forward or decorates calculate_loss; tinyst shrinks embeddings). GIST ones in fp64."""
    st_model, ts_model = fp64["model"] if "gist" in inner else l3
    st_guide, ts_guide = fp64["tiny"]
    cols, labels = columns(sick_triplets, 12, start=130), None
    if inner == "cosent":
        from tinyst.losses.cosent import CoSENTLoss

        cols, labels = columns(stsb, 12, start=170, k=2), torch.tensor([r[2] for r in stsb[170:182]])
        pair = stl.CoSENTLoss(st_model), CoSENTLoss(ts_model)
    else:
        pair = {
            "mnrl": lambda: (stl.MultipleNegativesRankingLoss(st_model), MultipleNegativesRankingLoss(ts_model)),
            "cmnrl": lambda: (stl.CachedMultipleNegativesRankingLoss(st_model, mini_batch_size=5),
                              CachedMultipleNegativesRankingLoss(ts_model, mini_batch_size=5)),
            "cmnsrl": lambda: (stl.CachedMultipleNegativesSymmetricRankingLoss(st_model, mini_batch_size=16),
                               CachedMultipleNegativesSymmetricRankingLoss(ts_model, mini_batch_size=16)),
            "gist": lambda: (stl.GISTEmbedLoss(st_model, st_guide), GISTEmbedLoss(ts_model, ts_guide)),
            "cgist": lambda: (stl.CachedGISTEmbedLoss(st_model, st_guide, mini_batch_size=5),
                              CachedGISTEmbedLoss(ts_model, ts_guide, mini_batch_size=5)),
        }[inner]()
    dims, weights = [32, 384, 128], [0.5, 1.0, 2.0]
    compare(stl.MatryoshkaLoss(st_model, pair[0], dims, weights), MatryoshkaLoss(ts_model, pair[1], dims, weights),
            [st_model], [ts_model], cols, labels)


def test_matryoshka_n_dims_per_step(l3, stsb):
    """n_dims_per_step draws the same sizes as ST from Python's random (same seed, same loss). The seed gives
    a largest-first draw: ST 3.4.1 shrinks its cached model output in place, so a draw like [128, 256] raises
    there; tinyst shrinks the original embeddings for every size."""
    st_model, ts_model = l3
    cols = columns(stsb, 10, start=200, k=2)
    random.seed(3)
    st_loss = stl.MatryoshkaLoss(st_model, stl.MultipleNegativesRankingLoss(st_model), [384, 256, 128, 64, 32], n_dims_per_step=2)
    v_st, g_st = run(st_loss, [st_model], cols)
    random.seed(3)
    ts_loss = MatryoshkaLoss(ts_model, MultipleNegativesRankingLoss(ts_model), [384, 256, 128, 64, 32], n_dims_per_step=2)
    v_ts, g_ts = run(ts_loss, [ts_model], cols)
    assert v_ts == pytest.approx(v_st, rel=TOL)
    assert grad_rel({hub_name(ts_model, n): g for n, g in g_ts[0].items()}, g_st[0]) <= TOL


def test_config_dicts_match_st(l3, guides):
    """get_config_dict gives ST 3.4.1's keys and values (the guide object aside)."""
    st_model, ts_model = l3
    st_guide, ts_guide = guides["l3"]
    pairs = [
        (stl.MultipleNegativesRankingLoss(st_model, scale=10), MultipleNegativesRankingLoss(ts_model, scale=10)),
        (stl.CachedMultipleNegativesRankingLoss(st_model), CachedMultipleNegativesRankingLoss(ts_model)),
        (stl.MultipleNegativesSymmetricRankingLoss(st_model), MultipleNegativesSymmetricRankingLoss(ts_model)),
        (stl.CachedMultipleNegativesSymmetricRankingLoss(st_model, mini_batch_size=8),
         CachedMultipleNegativesSymmetricRankingLoss(ts_model, mini_batch_size=8)),
        (stl.MatryoshkaLoss(st_model, stl.MultipleNegativesRankingLoss(st_model), [64, 384]),
         MatryoshkaLoss(ts_model, MultipleNegativesRankingLoss(ts_model), [64, 384])),
    ]
    for a, b in pairs:
        assert b.get_config_dict() == a.get_config_dict()
    for a, b in [(stl.GISTEmbedLoss(st_model, st_guide, 0.05), GISTEmbedLoss(ts_model, ts_guide, 0.05)),
                 (stl.CachedGISTEmbedLoss(st_model, st_guide), CachedGISTEmbedLoss(ts_model, ts_guide))]:
        sa, sb = a.get_config_dict(), b.get_config_dict()
        assert sa.keys() == sb.keys() and sa["temperature"] == sb["temperature"] and sb["guide"] is ts_guide
    assert MultipleNegativesRankingLoss(ts_model, gather_across_devices=True).get_config_dict()["gather_across_devices"]


# -- GradCache equivalences, dropout on ------------------------------------------------------------------
def cached_pairs(model, guide):
    return {
        "cmnrl": (MultipleNegativesRankingLoss(model), lambda m: CachedMultipleNegativesRankingLoss(model, mini_batch_size=m)),
        "cmnsrl": (MultipleNegativesSymmetricRankingLoss(model),
                   lambda m: CachedMultipleNegativesSymmetricRankingLoss(model, mini_batch_size=m)),
        "cgist": (GISTEmbedLoss(model, guide), lambda m: CachedGISTEmbedLoss(model, guide, mini_batch_size=m)),
    }


def seeded(loss, model, cols, seed=123):
    """Value, grads and the RNG state after forward + backward, from a fixed seed (dropout on)."""
    torch.manual_seed(seed)
    value, (g,) = run(loss, [model], cols)
    return value, g, torch.get_rng_state()


@pytest.mark.parametrize("name", ["cmnrl", "cmnsrl", "cgist"])
def test_cached_equals_plain_with_dropout(l3_path, guides, name, sick_triplets):
    """With dropout on and one mini-batch holding the batch, the cached loss draws the same dropout masks
    as the plain loss: same value, same gradients, and the global RNG ends in the same state."""
    model = tinyst.SentenceTransformer(str(l3_path), device="cpu").train()
    guide = guides["tiny"][1]
    plain, make_cached = cached_pairs(model, guide)[name]
    cols = columns(sick_triplets, 8, start=210, k=3 if name != "cmnsrl" else 2)
    v0, g0, rng0 = seeded(plain, model, cols)
    v1, g1, rng1 = seeded(make_cached(8), model, cols)
    assert abs(v1 - v0) <= TOL * abs(v0) and grad_rel(g1, g0) <= TOL
    assert torch.equal(rng0, rng1)
    v2, _, _ = seeded(plain, model, cols, seed=124)
    assert abs(v2 - v0) > 1e-4  # dropout really is on: another seed gives another loss


@pytest.mark.parametrize("name", ["cmnrl", "cmnsrl", "cgist"])
def test_cached_replay_reproduces_its_embeddings(l3_path, guides, name, sick_triplets):
    """With dropout on and mini_batch_size 3 < B = 8, the cached loss's value and gradient equal those of the
    plain loss computed on embeddings from the same sequence of mini-batch forwards (with a graph): the
    RNG replay gives the backward pass exactly the embeddings the loss was computed on."""
    model = tinyst.SentenceTransformer(str(l3_path), device="cpu").train()
    guide = guides["tiny"][1]
    plain, make_cached = cached_pairs(model, guide)[name]
    cols = columns(sick_triplets, 8, start=230, k=3 if name != "cmnsrl" else 2)
    v1, g1, _ = seeded(make_cached(3), model, cols)

    torch.manual_seed(123)
    model.zero_grad(set_to_none=True)
    features = [model.tokenize(c) for c in cols]
    embeddings = [torch.cat([model(mb)["sentence_embedding"] for mb in split(f, 3)]) for f in features]
    context = plain.loss_context(features) if hasattr(plain, "loss_context") else {}
    value = plain.compute_loss_from_embeddings(embeddings, None, **context)
    value.backward()
    assert abs(v1 - value.item()) <= TOL * abs(value.item()) and grad_rel(g1, grads(model)) <= TOL


def test_cached_scaled_backward_and_no_grad(l3, sick_triplets):
    """The replay honours the caller's scaling (0.5 * loss gives half the gradient); under no_grad the cached
    loss just returns the plain loss's value."""
    _, model = l3
    cols = columns(sick_triplets, 8, start=250)
    plain, cached = MultipleNegativesRankingLoss(model), CachedMultipleNegativesRankingLoss(model, mini_batch_size=3)
    features = [model.tokenize(c) for c in cols]
    model.zero_grad(set_to_none=True)
    plain(features).backward()
    g0 = grads(model)
    model.zero_grad(set_to_none=True)
    (0.5 * cached(features)).backward()
    assert grad_rel({n: 2 * g for n, g in grads(model).items()}, g0) <= TOL
    with torch.no_grad():
        assert cached(features).item() == pytest.approx(plain(features).item(), rel=TOL)


def test_matryoshka_cached_equals_plain(l3, sick_triplets):
    """Matryoshka around CachedMNRL (mini_batch_size 3) equals Matryoshka around MNRL."""
    _, model = l3
    cols = columns(sick_triplets, 8, start=270)
    v0, (g0,) = run(MatryoshkaLoss(model, MultipleNegativesRankingLoss(model), [384, 64]), [model], cols)
    v1, (g1,) = run(MatryoshkaLoss(model, CachedMultipleNegativesRankingLoss(model, mini_batch_size=3), [384, 64]),
                    [model], cols)
    assert v1 == pytest.approx(v0, rel=TOL) and grad_rel(g1, g0) <= TOL


# -- hand-derived checks --------------------------------------------------------------------------------
def gist_loop(emb, guide, temperature, strategy, margin, contrast_anchors, contrast_positives):
    """GIST written out one anchor at a time in Python floats."""
    import math

    def cos(u, v):
        return sum(x * y for x, y in zip(u, v)) / (math.hypot(*u) * math.hypot(*v))

    a, p, negs = emb[0], emb[1], emb[2:]
    ga, gp, gnegs = guide[0], guide[1], guide[2:]
    total = 0.0
    for i in range(len(a)):
        bar = cos(ga[i], gp[i])
        bar = bar - margin if strategy == "absolute" else bar * (1 - margin)
        cands = [(cos(a[i], p[j]), cos(ga[i], gp[j]), j == i) for j in range(len(a))]
        if contrast_anchors:
            cands += [(cos(a[i], a[j]), cos(ga[i], ga[j]), False) for j in range(len(a))]
        if contrast_positives:
            cands += [(cos(p[i], p[j]), cos(gp[i], gp[j]), False) for j in range(len(a))]
        for n, gn in zip(negs, gnegs):
            cands += [(cos(a[i], n[j]), cos(ga[i], gn[j]), False) for j in range(len(a))]
        kept = [s / temperature for s, g, own in cands if own or g <= bar]
        total += math.log(sum(math.exp(s) for s in kept)) - cos(a[i], p[i]) / temperature
    return total / len(a)


@pytest.mark.parametrize("strategy,margin,ca,cp", [("absolute", 0.0, True, True), ("absolute", 0.1, False, True),
                                                   ("relative", 0.05, True, False), ("relative", 0.2, False, False)])
def test_gist_margins_match_loop(l3, strategy, margin, ca, cp):
    """GIST's masking rule (absolute / relative margin, anchor / positive contrasts) equals the written-out loop."""
    _, model = l3
    torch.manual_seed(0)
    base = torch.randn(6, 8)
    emb = [base + 0.5 * torch.randn(6, 8) for _ in range(3)]  # correlated columns: some candidates get dropped
    guide = [e + 0.3 * torch.randn(6, 8) for e in emb]
    loss = GISTEmbedLoss(model, model, temperature=0.1, margin_strategy=strategy, margin=margin,
                         contrast_anchors=ca, contrast_positives=cp)
    got = loss.compute_loss_from_embeddings(emb, None, guide_embeddings=guide).item()
    want = gist_loop([e.tolist() for e in emb], [g.tolist() for g in guide], 0.1, strategy, margin, ca, cp)
    assert got == pytest.approx(want, rel=1e-5)


# -- input checks ---------------------------------------------------------------------------------------
def test_input_checks(l3):
    """Wrong column counts, unequal columns and bad arguments raise a ValueError/TypeError naming the loss."""
    _, model = l3
    f = model.tokenize(["a b", "c d", "e f"])
    short = model.tokenize(["a b", "c d"])
    cases = [
        (lambda: MultipleNegativesRankingLoss(model)([f]), "MultipleNegativesRankingLoss expects at least 2"),
        (lambda: MultipleNegativesRankingLoss(model)([f, short]), "same, non-zero number of rows"),
        (lambda: CachedMultipleNegativesRankingLoss(model)([f]), "CachedMultipleNegativesRankingLoss expects at least 2"),
        (lambda: MultipleNegativesSymmetricRankingLoss(model)([f, short]), "MultipleNegativesSymmetricRankingLoss"),
        (lambda: GISTEmbedLoss(model, model)([f, f, f, f]), "GISTEmbedLoss expects 2 to 3"),
        (lambda: GISTEmbedLoss(model, model).compute_loss_from_embeddings([torch.ones(2, 3)] * 2), "guide"),
        (lambda: GISTEmbedLoss(model, model, temperature=0), "temperature"),
        (lambda: GISTEmbedLoss(model, model, margin_strategy="max"), "margin_strategy"),
        (lambda: CachedGISTEmbedLoss(model, model, mini_batch_size=0), "mini_batch_size"),
        (lambda: ContrastiveTensionLossInBatchNegatives(model)([f, f, f]), "expects 2 text column"),
        (lambda: MegaBatchMarginLoss(model)([f, f, f]), "MegaBatchMarginLoss expects 2"),
        (lambda: MegaBatchMarginLoss(model)([f, short]), "same number of rows"),
        (lambda: MatryoshkaLoss(model, MultipleNegativesRankingLoss(model), []), "matryoshka_dims"),
        (lambda: MatryoshkaLoss(model, MultipleNegativesRankingLoss(model), [64, 32], [1.0]), "matryoshka_weights"),
        (lambda: MatryoshkaLoss(model, MultipleNegativesRankingLoss(model), [1000])([f, f]), "larger than"),
        (lambda: MatryoshkaLoss(model, MegaBatchMarginLoss(model), [64]), "cannot wrap MegaBatchMarginLoss"),
        (lambda: MatryoshkaLoss(model, MultipleNegativesRankingLoss(model), [64])([f]), "MultipleNegativesRankingLoss expects"),
    ]
    for call, message in cases:
        with pytest.raises(ValueError, match=message):
            call()
    with pytest.raises(TypeError, match="GISTEmbedLoss expects a SentenceTransformer as guide"):
        GISTEmbedLoss(model, "BAAI/bge-small")
    with pytest.raises(TypeError, match="MatryoshkaLoss expects a tinyst loss"):
        MatryoshkaLoss(model, torch.nn.MSELoss(), [64])
    assert CachedGISTEmbedLoss(model, model, mini_batch_size=2)([f, f, f, f]).item() > 0  # any number of negatives


def test_contrastive_tension_copy_is_independent(l3_path):
    """model1 is a deep copy: it has its own parameters, and both belong to the loss with logit_scale = log(scale)."""
    model = tinyst.SentenceTransformer(str(l3_path), device="cpu")
    loss = ContrastiveTensionLossInBatchNegatives(model, scale=10)
    assert loss.model2 is model and loss.model1 is not model
    own = {id(p) for p in model.parameters()}
    assert not own & {id(p) for p in loss.model1.parameters()}
    assert loss.logit_scale.item() == pytest.approx(torch.tensor(10.0).log().item())
    assert len(list(loss.parameters())) == 2 * len(own) + 1
