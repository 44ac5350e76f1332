"""Pair, triplet, class-label and distillation losses: value and gradient parity with sentence-transformers 3.4.1.

Each parity test loads the same model folder in both libraries (the shared paraphrase-MiniLM-L3-v2 and
tiny random BERT / MPNet models), builds the ST loss around the ST model and the tinyst loss around the
tinyst model, feeds both the same real text (STSb, SICK, MSRP), and compares the loss value and the
gradient of every encoder parameter (matched by hub name). Dropout is off (eval mode).
"""
import math
import random

import pytest
import torch

import tinyst
import tinyst.losses as TL
from tinyst import util as TU
from tinyst.models.bert import BERT_KEYS, expand_key_table
from tinyst.models.mpnet import MPNET_KEYS

st_mod = pytest.importorskip("sentence_transformers")
import sentence_transformers.losses as SL  # noqa: E402
from sentence_transformers import util as SU  # noqa: E402

from tests.tiny_models import make_tiny_model_dir  # noqa: E402

TOL = 1e-5
B = 16
WORST = {}  # case id -> (value rel diff, grad rel diff), printed at the end with -s


# -- real text from the shared data folder ---------------------------------------------------------
def read_tsv(path, skip_header=True):
    with open(path, encoding="utf-8-sig") as f:
        lines = [line.rstrip("\n").split("\t") for line in f]
    return lines[1:] if skip_header else lines


def stsb(data_dir, n=B):
    """(sentence1, sentence2, score/5) from the STSb test split (columns 5, 6, 4 by index)."""
    rows = read_tsv(data_dir / "stsb" / "sts-test.csv", skip_header=False)[:n]
    return [r[5] for r in rows], [r[6] for r in rows], torch.tensor([float(r[4]) / 5 for r in rows])


def sick(data_dir, n=B):
    """(sentence_A, sentence_B, entailment class id) from SICK train."""
    classes = {"NEUTRAL": 0, "ENTAILMENT": 1, "CONTRADICTION": 2}
    rows = read_tsv(data_dir / "sick" / "SICK_train.txt")[:n]
    return [r[1] for r in rows], [r[2] for r in rows], torch.tensor([classes[r[4]] for r in rows])


def sick_triplets(data_dir, n=B):
    """(anchor, entailed, contradicted) triplets from SICK train."""
    ent, con = {}, {}
    for r in read_tsv(data_dir / "sick" / "SICK_train.txt"):
        {"ENTAILMENT": ent, "CONTRADICTION": con}.get(r[4], {}).setdefault(r[1], r[2])
    anchors = [a for a in ent if a in con][:n]
    return anchors, [ent[a] for a in anchors], [con[a] for a in anchors]


def msrp(data_dir, n=B):
    """(string1, string2, paraphrase 0/1) from MSRP train."""
    rows = read_tsv(data_dir / "msrp" / "msr-para-train.tsv")[:n]
    return [r[3] for r in rows], [r[4] for r in rows], torch.tensor([int(r[0]) for r in rows])


# -- the two models, loaded from one folder -----------------------------------------------------------
MODELS = ["l3", "bert", "mpnet"]


@pytest.fixture(scope="module")
def load(request, tmp_path_factory):
    """name ("l3", "bert", "mpnet:4" = 4 layers) -> (ST model, tinyst model) from one folder, eval mode, cached."""
    cache = {}

    def get(name):
        if name not in cache:
            if name == "l3":
                path = request.getfixturevalue("l3_path")
            else:
                arch, _, layers = name.partition(":")
                config = {"num_hidden_layers": int(layers)} if layers else {}
                path = make_tiny_model_dir(tmp_path_factory.mktemp("tiny"), arch, **config)
            cache[name] = (st_mod.SentenceTransformer(str(path), device="cpu").eval(),
                           tinyst.SentenceTransformer(str(path), device="cpu").eval())
        return cache[name]

    return get


def grid(cases, quick=(), models=MODELS):
    """(model, case) pairs; on the real L3 model only the `quick` cases run by default, the rest are slow."""
    return [pytest.param(m, c, marks=[pytest.mark.slow] if m == "l3" and c not in quick else [], id=f"{m}-{c}")
            for m in models for c in cases]


def encoder_grads(st, ts):
    """[(name, ST grad, tinyst grad)] for every encoder parameter, matched through the hub key table."""
    enc = ts[0].auto_model
    table = expand_key_table(BERT_KEYS if enc.model_type == "bert" else MPNET_KEYS, enc.config.num_hidden_layers)
    ours = dict(enc.named_parameters())
    out = []
    for name, p in st[0].auto_model.named_parameters():
        module, _, leaf = name.rpartition(".")
        if module not in table:
            assert p.grad is None or not p.grad.any(), f"{name} has a gradient in ST but no tinyst twin"
            continue
        out.append((name, p.grad, ours[f"{table[module]}.{leaf}"].grad))
    return out


def rel(a, b, scale=None) -> float:
    """max |a - b| relative to `scale` (default max |b|); 0 when equal."""
    a, b = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)
    diff = (a - b).abs().max().item()
    scale = b.abs().max().item() if scale is None else scale
    return 0.0 if diff == 0 else diff / max(scale, 1e-30)


class FixedEmbeddings(torch.nn.Module):
    """A stand-in model returning given embeddings, so both libraries' losses see the very same leaves."""

    def __init__(self, embeddings):
        super().__init__()
        self.embeddings = embeddings
        self.device = torch.device("cpu")

    def forward(self, features):
        return {"sentence_embedding": self.embeddings[features["column"]]}


def loss_math_diff(make_loss, embeddings, labels, extra_params) -> tuple[float, float]:
    """Both libraries' loss on identical embedding leaves: (value rel diff, embedding-grad rel diff)."""
    leaves = [[e.detach().clone().requires_grad_() for e in embeddings] for _ in range(2)]
    st_loss, ts_loss = make_loss(SL, SU, FixedEmbeddings(leaves[0])), make_loss(TL, TU, FixedEmbeddings(leaves[1]))
    for prepare in extra_params:
        prepare(st_loss, ts_loss)
    features = [{"column": k} for k in range(len(embeddings))]
    values = []
    for loss in (st_loss, ts_loss):
        seed = random.getstate()
        value = loss(features, None if labels is None else labels.clone())
        random.setstate(seed)
        value.backward()
        values.append(value.item())
    grads = [(a.grad, b.grad) for a, b in zip(*leaves) if a.grad is not None or b.grad is not None]
    assert all(a is not None and b is not None for a, b in grads), "gradient missing on one side"
    return rel(values[1], values[0]), max((rel(b, a) for a, b in grads), default=0.0)


def run_parity(models, make_loss, columns, labels, case, extra_params=(), math_check=True):
    """Same texts through ST and tinyst: compare value and every gradient; return the losses.

    Two checks: (1) the loss math alone, both losses on identical embedding leaves (exact up to float
    rounding); (2) end to end, each library's loss around its own model, comparing the encoder gradients.
    In (2) the gradient diff is measured against the model's largest gradient (inf-norm over all
    parameters): a few tensors have an exactly-zero true gradient (attention key biases, the last
    LayerNorm bias under a translation-invariant loss) and hold only rounding noise of the two encoders.
    """
    st, ts = models
    st.zero_grad(set_to_none=True)
    ts.zero_grad(set_to_none=True)
    st_loss, ts_loss = make_loss(SL, SU, st), make_loss(TL, TU, ts)
    for prepare in extra_params:  # e.g. copy a loss-owned classifier from ST to tinyst
        prepare(st_loss, ts_loss)
    seed = random.getstate()
    st_value = st_loss([st.tokenize(c) for c in columns], None if labels is None else labels.clone())
    st_value.backward()
    random.setstate(seed)  # wrappers sample layers/dims with `random`: give both the same draws
    ts_value = ts_loss([ts.tokenize(c) for c in columns], None if labels is None else labels.clone())
    ts_value.backward()
    pairs = []
    for name, g_st, g_ts in encoder_grads(st, ts):
        if g_st is None:
            assert g_ts is None or not g_ts.any(), f"{name}: tinyst has a gradient, ST has none"
            continue
        assert g_ts is not None, f"{name}: ST has a gradient, tinyst has none"
        pairs.append((g_ts, g_st))
    top = max((g.abs().max().item() for _, g in pairs), default=0.0)
    assert top > 0 or st_value.item() == 0, "no gradient at all"
    value_diff = rel(ts_value.item(), st_value.item())
    grad_diff = max((rel(a, b, top) for a, b in pairs), default=0.0)
    key = f"{case}[{ts[0].auto_model.model_type}-{ts[0].auto_model.config.num_hidden_layers}L]"
    math_value = math_grad = 0.0
    if math_check:  # wrappers that need the real model (AdaptiveLayerLoss) skip this
        with torch.no_grad():
            embeddings = [ts(ts.tokenize(c))["sentence_embedding"] for c in columns]
        math_value, math_grad = loss_math_diff(make_loss, embeddings, labels, extra_params)
    WORST[key] = (value_diff, grad_diff, math_value, math_grad)
    assert math_value < TOL and math_grad < TOL, f"{case}: loss math differs: value {math_value}, grad {math_grad}"
    assert value_diff < TOL, f"{case}: value {ts_value.item()} vs ST {st_value.item()}"
    assert grad_diff < TOL, f"{case}: gradient rel diff {grad_diff}"
    return st_loss, ts_loss


@pytest.fixture(scope="module", autouse=True)
def report_worst():
    yield
    for key, (v, g, mv, mg) in sorted(WORST.items()):
        print(f"parity {key}: end-to-end value {v:.1e} grad {g:.1e} | loss math value {mv:.1e} grad {mg:.1e}")
    WORST.clear()


# -- parity cases ---------------------------------------------------------------------------------
SCORE_CASES = {
    "CoSENT": lambda L, U, m: L.CoSENTLoss(m),
    "CoSENT-dot-scale5": lambda L, U, m: L.CoSENTLoss(m, scale=5.0, similarity_fct=U.pairwise_dot_score),
    "AnglE": lambda L, U, m: L.AnglELoss(m),
    "CosineSimilarity": lambda L, U, m: L.CosineSimilarityLoss(m),
    "CosineSimilarity-L1": lambda L, U, m: L.CosineSimilarityLoss(m, loss_fct=torch.nn.L1Loss()),
}


@pytest.mark.parametrize("model,case", grid(SCORE_CASES, quick=["CoSENT", "AnglE", "CosineSimilarity"]))
def test_score_losses_match_st(load, data_dir, model, case):
    """CoSENT / AnglE / CosineSimilarity on STSb pairs: same value and gradients as ST."""
    s1, s2, score = stsb(data_dir)
    run_parity(load(model), SCORE_CASES[case], [s1, s2], score, case)


BINARY_CASES = {
    "Contrastive-cos": lambda L, U, m: L.ContrastiveLoss(m),
    "Contrastive-euclid": lambda L, U, m: L.ContrastiveLoss(m, L.SiameseDistanceMetric.EUCLIDEAN, margin=2.0),
    "Contrastive-manhattan-sum": lambda L, U, m: L.ContrastiveLoss(
        m, L.SiameseDistanceMetric.MANHATTAN, margin=30.0, size_average=False),
    "OnlineContrastive": lambda L, U, m: L.OnlineContrastiveLoss(m),
    "OnlineContrastive-euclid": lambda L, U, m: L.OnlineContrastiveLoss(m, L.SiameseDistanceMetric.EUCLIDEAN, 3.0),
}


@pytest.mark.parametrize("model,case", grid(BINARY_CASES, quick=["Contrastive-cos", "OnlineContrastive"]))
def test_binary_losses_match_st(load, data_dir, model, case):
    """Contrastive / OnlineContrastive on MSRP paraphrase pairs: same value and gradients as ST."""
    s1, s2, label = msrp(data_dir)
    run_parity(load(model), BINARY_CASES[case], [s1, s2], label, case)


@pytest.mark.parametrize("model", ["bert", "mpnet"])
def test_online_contrastive_float_labels_and_single_kind(load, data_dir, model):
    """OnlineContrastive with float labels and with a single negative in the batch: as ST."""
    models = load(model)
    s1, s2, label = msrp(data_dir)
    one_neg = torch.ones(B)
    one_neg[3] = 0
    run_parity(models, BINARY_CASES["OnlineContrastive"], [s1, s2], label.float(), "OnlineContrastive-float")
    run_parity(models, BINARY_CASES["OnlineContrastive"], [s1, s2], one_neg, "OnlineContrastive-1neg")


TRIPLET_CASES = {
    "Triplet-euclid": lambda L, U, m: L.TripletLoss(m),
    "Triplet-cos": lambda L, U, m: L.TripletLoss(m, L.TripletDistanceMetric.COSINE, triplet_margin=0.5),
    "Triplet-manhattan": lambda L, U, m: L.TripletLoss(m, L.TripletDistanceMetric.MANHATTAN, triplet_margin=50),
}


@pytest.mark.parametrize("model,case", grid(TRIPLET_CASES, quick=["Triplet-euclid"]))
def test_triplet_loss_matches_st(load, data_dir, model, case):
    """TripletLoss (v3 positive distances) on SICK (anchor, entailed, contradicted): as ST."""
    run_parity(load(model), TRIPLET_CASES[case], list(sick_triplets(data_dir)), None, case)


BATCH_CASES = {
    "BatchAll": lambda L, U, m: L.BatchAllTripletLoss(m),
    "BatchAll-cos": lambda L, U, m: L.BatchAllTripletLoss(
        m, L.BatchHardTripletLossDistanceFunction.cosine_distance, margin=0.3),
    "BatchHard": lambda L, U, m: L.BatchHardTripletLoss(m),
    "BatchHard-cos": lambda L, U, m: L.BatchHardTripletLoss(
        m, L.BatchHardTripletLossDistanceFunction.cosine_distance, margin=0.3),
    "BatchHardSoftMargin": lambda L, U, m: L.BatchHardSoftMarginTripletLoss(m),
    "BatchSemiHard": lambda L, U, m: L.BatchSemiHardTripletLoss(m),
    "BatchSemiHard-cos": lambda L, U, m: L.BatchSemiHardTripletLoss(
        m, L.BatchHardTripletLossDistanceFunction.cosine_distance, margin=0.1),
}


@pytest.mark.parametrize(
    "model,case", grid(BATCH_CASES, quick=["BatchAll", "BatchHard", "BatchHardSoftMargin", "BatchSemiHard"]))
def test_batch_triplet_losses_match_st(load, data_dir, model, case):
    """Batch* triplet losses on SICK sentences labelled by entailment class: as ST."""
    sentences, _, label = sick(data_dir, 24)
    run_parity(load(model), BATCH_CASES[case], [sentences], label, case)


@pytest.mark.parametrize("model,case", grid(["BatchHard", "BatchSemiHard", "BatchAll"]))
def test_batch_triplet_losses_with_lonely_labels_match_st(load, data_dir, model, case):
    """A batch with a label seen once and duplicate texts (zero distances): still as ST."""
    sentences, _, label = sick(data_dir, 12)
    sentences = sentences[:10] + sentences[:2]  # two exact duplicates: distance 0 off the diagonal
    label = torch.tensor([0, 0, 1, 1, 1, 2, 2, 3, 0, 1, 0, 0])  # label 3 appears once
    run_parity(load(model), BATCH_CASES[case], [sentences], label, case + "-lonely")


def copy_classifier(st_loss, ts_loss):
    with torch.no_grad():
        ts_loss.classifier.weight.copy_(st_loss.classifier.weight)
        ts_loss.classifier.bias.copy_(st_loss.classifier.bias)


@pytest.mark.parametrize("model,mult", grid([False, True], quick=[False]))
def test_softmax_loss_matches_st(load, data_dir, model, mult):
    """SoftmaxLoss on SICK NLI classes: same value, encoder and classifier gradients as ST."""
    models = load(model)
    s1, s2, label = sick(data_dir)
    dim = models[1].get_sentence_embedding_dimension()

    def make(L, U, m):
        return L.SoftmaxLoss(m, dim, 3, concatenation_sent_multiplication=mult)

    st_loss, ts_loss = run_parity(models, make, [s1, s2], label, f"Softmax-mult{mult}", [copy_classifier])
    assert rel(ts_loss.classifier.weight.grad, st_loss.classifier.weight.grad) < TOL
    assert rel(ts_loss.classifier.bias.grad, st_loss.classifier.bias.grad) < TOL
    # labels=None returns (embeddings, logits) for evaluation, as ST
    st, ts = models
    with torch.no_grad():
        st_reps, st_logits = st_loss([st.tokenize(c) for c in (s1, s2)], None)
        ts_reps, ts_logits = ts_loss([ts.tokenize(c) for c in (s1, s2)], None)
    assert len(ts_reps) == 2 and rel(ts_logits, st_logits) < TOL


@pytest.mark.parametrize("model", MODELS)
def test_mse_loss_matches_st(load, data_dir, model):
    """MSELoss with one and with two text columns against a teacher embedding: as ST."""
    models = load(model)
    s1, s2, _ = stsb(data_dir)
    torch.manual_seed(0)
    teacher = torch.randn(B, models[1].get_sentence_embedding_dimension()) * 0.3
    run_parity(models, lambda L, U, m: L.MSELoss(m), [s1], teacher, "MSE-1col")
    run_parity(models, lambda L, U, m: L.MSELoss(m), [s1, s2], teacher, "MSE-2col")


@pytest.mark.parametrize("model,sim", grid(["dot", "cos"], quick=["dot"]))
def test_margin_mse_matches_st(load, data_dir, model, sim):
    """MarginMSELoss on SICK triplets with (B,) margins: as ST."""
    models = load(model)
    anchors, pos, neg = sick_triplets(data_dir)
    margins = torch.linspace(-1, 3, len(anchors))

    def make(L, U, m):
        return L.MarginMSELoss(m, U.pairwise_dot_score if sim == "dot" else U.pairwise_cos_sim)

    run_parity(models, make, [anchors, pos, neg], margins, f"MarginMSE-{sim}")


# -- beyond ST 3.4.1: checked against the formulas written out ---------------------------------------
def embed(ts, columns):
    return [ts(ts.tokenize(c))["sentence_embedding"] for c in columns]


def test_margin_mse_several_negatives_matches_formula(load, data_dir):
    """MarginMSE with k negatives: (B, k) margins and (B, k+1) teacher scores give the written-out MSE."""
    ts = load("bert")[1]
    s1, s2, _ = stsb(data_dir, 6)
    cols = [s1, s2, s2[::-1], s1[::-1]]  # query, positive, two negatives
    teacher = torch.randn(6, 3)
    with torch.no_grad():
        q, p, n1, n2 = embed(ts, cols)
        got = TL.MarginMSELoss(ts)([ts.tokenize(c) for c in cols], teacher)
        got_margins = TL.MarginMSELoss(ts)([ts.tokenize(c) for c in cols], teacher[:, :1] - teacher[:, 1:])
    want = 0.0
    for i in range(6):
        for k, n in enumerate((n1, n2)):
            pred = float(q[i] @ p[i] - q[i] @ n[i])
            want += (pred - float(teacher[i, 0] - teacher[i, k + 1])) ** 2
    want /= 12
    assert got.item() == pytest.approx(want, rel=1e-5)
    assert got_margins.item() == pytest.approx(want, rel=1e-5)


@pytest.mark.parametrize("temperature", [1.0, 2.5])
def test_distill_kl_div_matches_formula(load, data_dir, temperature):
    """DistillKLDivLoss equals T^2 * mean_i sum_j p_ij log(p_ij / q_ij), written out in floats."""
    ts = load("bert")[1]
    q_txt, pos, neg = sick_triplets(data_dir, 5)
    cols = [q_txt, pos, neg, pos[::-1]]
    teacher = torch.tensor([[3.0, 1.0, -1.0], [0.5, 0.4, 0.9], [2.0, 2.0, 2.0], [1.0, -2.0, 0.0], [9.0, 0.0, 1.0]])
    with torch.no_grad():
        q, *cands = embed(ts, cols)
        got = TL.DistillKLDivLoss(ts, temperature=temperature)([ts.tokenize(c) for c in cols], teacher)
    want = 0.0
    for i in range(5):
        s = [float(q[i] @ c[i]) / temperature for c in cands]
        t = [float(x) / temperature for x in teacher[i]]
        zs, zt = math.log(sum(math.exp(x) for x in s)), math.log(sum(math.exp(x) for x in t))
        want += sum(math.exp(tj - zt) * ((tj - zt) - (sj - zs)) for tj, sj in zip(t, s))
    assert got.item() == pytest.approx(want / 5 * temperature**2, rel=1e-5)


def test_distill_kl_div_gradient_flows_to_student_only(load, data_dir):
    """DistillKLDivLoss backpropagates into the model, never into the teacher labels."""
    ts = load("bert")[1]
    ts.zero_grad(set_to_none=True)
    q_txt, pos, neg = sick_triplets(data_dir, 4)
    teacher = torch.randn(4, 2, requires_grad=True)
    TL.DistillKLDivLoss(ts)([ts.tokenize(c) for c in (q_txt, pos, neg)], teacher).backward()
    assert teacher.grad is None
    assert ts[0].auto_model.emb.word.weight.grad.abs().sum() > 0


# -- config dicts (model card) ------------------------------------------------------------------------
CONFIG_CASES = {**SCORE_CASES, **BINARY_CASES, **TRIPLET_CASES, **BATCH_CASES,
                "MSE": lambda L, U, m: L.MSELoss(m), "MarginMSE": lambda L, U, m: L.MarginMSELoss(m)}


@pytest.mark.parametrize("case", CONFIG_CASES)
def test_config_dict_matches_st(load, case):
    """get_config_dict() gives ST's keys and values (what the model card prints)."""
    st, ts = load("bert")
    st_loss, ts_loss = CONFIG_CASES[case](SL, SU, st), CONFIG_CASES[case](TL, TU, ts)
    want = st_loss.get_config_dict() if hasattr(st_loss, "get_config_dict") else {}
    assert ts_loss.get_config_dict() == want
    assert isinstance(ts_loss.citation, str)
