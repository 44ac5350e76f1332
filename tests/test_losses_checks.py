"""Bad inputs to the pair / triplet / class-label / distillation losses: clear errors naming the loss.

The losses run around a stand-in model that returns fixed embeddings, so these tests need no encoder.
"""
import warnings

import pytest
import torch

import tinyst.losses as TL
from tests.test_losses_pairs import FixedEmbeddings

B, D = 6, 8


def make(loss_cls, n_columns=2, dim=D, **kwargs):
    """(loss around fixed random embeddings, features for its n_columns columns)."""
    torch.manual_seed(0)
    model = FixedEmbeddings([torch.randn(B, dim, requires_grad=True) for _ in range(n_columns)])
    return loss_cls(model, **kwargs), [{"column": k} for k in range(n_columns)]


FLOAT = torch.linspace(0, 1, B)
INT = torch.tensor([0, 1, 2, 0, 1, 2])
BINARY = torch.tensor([1, 0, 1, 0, 1, 1])

# loss, good column count, a bad column count, a valid label
CASES = {
    "CoSENTLoss": (TL.CoSENTLoss, 2, 3, FLOAT),
    "AnglELoss": (TL.AnglELoss, 2, 1, FLOAT),
    "CosineSimilarityLoss": (TL.CosineSimilarityLoss, 2, 3, FLOAT),
    "ContrastiveLoss": (TL.ContrastiveLoss, 2, 3, BINARY),
    "OnlineContrastiveLoss": (TL.OnlineContrastiveLoss, 2, 1, BINARY),
    "TripletLoss": (TL.TripletLoss, 3, 2, None),
    "BatchAllTripletLoss": (TL.BatchAllTripletLoss, 1, 2, INT),
    "BatchHardTripletLoss": (TL.BatchHardTripletLoss, 1, 2, INT),
    "BatchHardSoftMarginTripletLoss": (TL.BatchHardSoftMarginTripletLoss, 1, 2, INT),
    "BatchSemiHardTripletLoss": (TL.BatchSemiHardTripletLoss, 1, 3, INT),
    "MSELoss": (TL.MSELoss, 1, 0, torch.randn(B, D)),
    "MarginMSELoss": (TL.MarginMSELoss, 3, 2, FLOAT),
    "DistillKLDivLoss": (TL.DistillKLDivLoss, 3, 2, torch.randn(B, 2)),
}


@pytest.mark.parametrize("name", CASES)
def test_valid_batch_gives_finite_loss_with_gradient(name):
    """The valid batch of each case gives a finite loss that backpropagates (so the error cases are fair)."""
    cls, n, _, label = CASES[name]
    loss, features = make(cls, n)
    value = loss(features, label)
    value.backward()
    assert torch.isfinite(value) and any(e.grad is not None for e in loss.model.embeddings)


@pytest.mark.parametrize("name", CASES)
def test_wrong_number_of_text_columns(name):
    """Too few or too many text columns: ValueError naming the loss and the expected count."""
    cls, _, bad, label = CASES[name]
    loss, features = make(cls, max(bad, 1))
    with pytest.raises(ValueError, match=rf"{name} expects .*text column\(s\), got {bad}"):
        loss(features[:bad], label)


@pytest.mark.parametrize("name", [n for n, case in CASES.items() if case[3] is not None])
def test_missing_label(name):
    """A loss that needs labels gets none: ValueError naming the loss."""
    cls, n, _, _ = CASES[name]
    loss, features = make(cls, n)
    with pytest.raises(ValueError, match=f"{name} needs a label column"):
        loss(features, None)


@pytest.mark.parametrize("name", ["CoSENTLoss", "CosineSimilarityLoss", "ContrastiveLoss", "MarginMSELoss"])
def test_nan_label(name):
    """NaN in the labels: ValueError naming the loss."""
    cls, n, _, label = CASES[name]
    loss, features = make(cls, n)
    bad = label.float().clone()
    bad[2] = float("nan")
    with pytest.raises(ValueError, match=f"{name} got NaN"):
        loss(features, bad)


@pytest.mark.parametrize("name", ["CoSENTLoss", "AnglELoss", "CosineSimilarityLoss", "ContrastiveLoss"])
def test_two_dimensional_label_for_a_score_loss(name):
    """A (B, 2) label where one number per row is expected: ValueError with the shape."""
    cls, n, _, _ = CASES[name]
    loss, features = make(cls, n)
    with pytest.raises(ValueError, match=rf"{name} expects one number per row.*\(6, 2\)"):
        loss(features, torch.rand(B, 2))


@pytest.mark.parametrize("name", ["ContrastiveLoss", "OnlineContrastiveLoss"])
def test_contrastive_losses_need_binary_labels(name):
    """Scores instead of 0/1 labels: ValueError saying binary labels are expected."""
    loss, features = make(CASES[name][0])
    with pytest.raises(ValueError, match=f"{name} expects binary labels 0/1"):
        loss(features, FLOAT)


@pytest.mark.parametrize("name", [n for n in CASES if n.startswith("Batch")])
def test_batch_triplet_losses_need_integer_labels(name):
    """Float labels for a class-label loss: ValueError naming the dtype."""
    loss, features = make(CASES[name][0], 1)
    with pytest.raises(ValueError, match=f"{name} expects integer class labels.*float32"):
        loss(features, INT.float())


def test_softmax_loss_label_checks():
    """SoftmaxLoss: float labels, labels outside [0, num_labels), a wrong embedding size: clear errors."""
    loss, features = make(TL.SoftmaxLoss, sentence_embedding_dimension=D, num_labels=3)
    assert torch.isfinite(loss(features, INT))
    with pytest.raises(ValueError, match="SoftmaxLoss expects integer class labels"):
        loss(features, INT.float())
    with pytest.raises(ValueError, match=r"SoftmaxLoss expects class labels in \[0, 3\), got values \[0, 1, 3\]"):
        loss(features, torch.tensor([0, 1, 3, 0, 1, 0]))
    with pytest.raises(ValueError, match=r"SoftmaxLoss expects class labels in \[0, 3\)"):
        loss(features, torch.tensor([0, 1, -1, 0, 1, 0]))
    wrong, features = make(TL.SoftmaxLoss, dim=D + 2, sentence_embedding_dimension=D, num_labels=3)
    with pytest.raises(ValueError, match=f"SoftmaxLoss was built for sentence_embedding_dimension={D}.*{D + 2}"):
        wrong(features, INT)
    with pytest.raises(ValueError, match="at least one concatenation"):
        make(TL.SoftmaxLoss, sentence_embedding_dimension=D, num_labels=3, concatenation_sent_rep=False,
             concatenation_sent_difference=False)
    loss, features = make(TL.SoftmaxLoss, sentence_embedding_dimension=D, num_labels=3)
    reps, logits = loss(features, None)  # no labels: (embeddings, logits) for evaluation
    assert logits.shape == (B, 3) and len(reps) == 2
    with pytest.raises(ValueError, match="SoftmaxLoss expects 2 text column"):
        loss(features[:1], None)


def test_distillation_label_shapes():
    """MSE / MarginMSE / DistillKLDiv: wrong label shapes give errors with expected and actual shapes."""
    loss, features = make(TL.MSELoss, 2)
    with pytest.raises(ValueError, match=rf"MSELoss expects teacher embeddings of shape \(6, 8\).*\(6, 9\)"):
        loss(features, torch.randn(B, D + 1))
    with pytest.raises(ValueError, match=r"MSELoss expects a \(B, D\) embedding as label"):
        loss(features, FLOAT)
    loss, features = make(TL.MarginMSELoss, 3)
    want = r"MarginMSELoss with 1 negative column\(s\) expects labels of shape \(6,\) or \(6, 1\) \(margins\)"
    with pytest.raises(ValueError, match=want + r" or \(6, 2\) \(teacher scores\), got \(6, 3\)"):
        loss(features, torch.randn(B, 3))
    assert torch.isfinite(loss(features, torch.randn(B, 2)))  # raw teacher scores for (pos, neg)
    loss, features = make(TL.DistillKLDivLoss, 4)
    with pytest.raises(ValueError, match=r"DistillKLDivLoss expects teacher scores of shape \(6, 3\).*\(6, 2\)"):
        loss(features, torch.randn(B, 2))
    with pytest.raises(ValueError, match="positive finite temperature"):
        make(TL.DistillKLDivLoss, 3, temperature=0.0)


def test_angle_loss_needs_even_dimension():
    """AnglE splits each embedding into real and imaginary halves: an odd size is refused."""
    loss, features = make(TL.AnglELoss, dim=7)
    with pytest.raises(ValueError, match="AnglELoss needs an even embedding dimension, got 7"):
        loss(features, FLOAT)


def test_semi_hard_without_positive_pairs_is_zero_with_warning():
    """BatchSemiHard on a batch where no two rows share a label: 0 (ST gives NaN) and a warning."""
    loss, features = make(TL.BatchSemiHardTripletLoss, 1)
    with pytest.warns(UserWarning, match="no two rows of the batch share a label"):
        value = loss(features, torch.arange(B))
    value.backward()
    assert value.item() == 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert torch.isfinite(loss(features, INT))


@pytest.mark.parametrize("name", CASES)
def test_loss_math_runs_in_fp32_for_bf16_embeddings(name):
    """bf16 embeddings (autocast) give an fp32 loss equal to the loss of the same values upcast to fp32."""
    cls, n, _, label = CASES[name]
    loss, features = make(cls, n)
    half = [e.detach().bfloat16() for e in loss.model.embeddings]
    loss.model.embeddings = half
    low = loss(features, label)
    loss.model.embeddings = [e.float() for e in half]
    assert low.dtype == torch.float32 and low.item() == loss(features, label).item()
