"""The dataset <-> loss contract: which columns are inputs and which is the label (ST's collator rules), the
checks against a loss's declared `n_inputs` / `label`, and the column-order warning (ST's name table)."""
import warnings

import pytest
from torch import nn

from tinyst.datasets import Dataset, check_dataset_for_loss, input_columns, label_column, warn_column_order


class Loss(nn.Module):
    """A stand-in loss declaring what it needs, as tinyst losses do (see tinyst/losses/base.py)."""

    def __init__(self, n_inputs=(2, None), label=None):
        super().__init__()
        self.n_inputs, self.label = n_inputs, label


class Wrapper(nn.Module):  # like MatryoshkaLoss: the inner loss decides
    def __init__(self, loss):
        super().__init__()
        self.loss = loss


def ds(**columns):
    return Dataset.from_dict(columns)


TEXT = ["a", "b", "c"]


def test_input_and_label_columns_follow_st_collator():
    """Inputs are all columns but label/score/dataset_name, in order; the label is the first of label, score."""
    d = ds(dataset_name=["x"] * 3, q=TEXT, score=[0.1, 0.2, 0.3], p=TEXT)
    assert input_columns(d) == ["q", "p"] and label_column(d) == "score"
    assert label_column(ds(a=TEXT)) is None and input_columns(ds(a=TEXT, label=[0, 1, 0])) == ["a"]


def test_matching_datasets_pass():
    """Datasets that fit the loss raise nothing and warn nothing."""
    cases = [(ds(anchor=TEXT, positive=TEXT), Loss((2, None), None)),
             (ds(anchor=TEXT, positive=TEXT, negative=TEXT, n2=TEXT), Loss((2, None), None)),
             (ds(s1=TEXT, s2=TEXT, score=[0.0, 0.5, 1.0]), Loss((2, 2), "float")),
             (ds(s1=TEXT, s2=TEXT, label=[0, 2, 1]), Wrapper(Loss((2, 2), "int"))),
             (ds(s1=TEXT, s2=TEXT, label=[0, 1, 1]), Loss((2, 2), "binary")),
             (ds(s1=TEXT, label=[[0.1, 0.2]] * 3), Loss((1, None), "vector")),
             (ds(s1=TEXT, label=["any", "thing", "!"]), Loss((1, 1), "any"))]
    for d, loss in cases:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            check_dataset_for_loss(d, loss)


@pytest.mark.parametrize("columns,loss,message", [
    ({"anchor": TEXT}, Loss((2, None), None), r"Loss expects at least 2 text column\(s\), but the dataset has 1: \['anchor'\]"),
    ({"a": TEXT, "b": TEXT, "c": TEXT}, Loss((2, 2), "float"), "expects 2 text column"),
    ({"a": TEXT, "b": TEXT}, Loss((2, 2), "float"), "needs a label column named 'label' or 'score'"),
    ({"a": TEXT, "b": TEXT, "label": [0.5, 1.0, 0.0]}, Loss((2, 2), "int"), "expects integer class labels.*double"),
    ({"a": TEXT, "b": TEXT, "label": ["x", "y", "z"]}, Loss((2, 2), "float"), "one number per row.*string"),
    ({"a": TEXT, "b": TEXT, "label": [0, 1, 2]}, Loss((2, 2), "binary"), r"binary labels 0/1.*\[2\]"),
    ({"a": TEXT, "label": [1.0, 2.0, 3.0]}, Loss((1, None), "vector"), "vector of numbers"),
    ({"a": TEXT, "b": [1, 2, 3]}, Loss((2, None), None), "text column 'b' of the dataset holds int64 values"),
    ({"a": TEXT, "b": ["x", None, "z"]}, Loss((2, None), None), "1 missing"),
    ({"a": TEXT, "b": TEXT, "label": [1, None, 0]}, Loss((2, 2), "int"), "missing"),
    ({"a": TEXT, "b": TEXT, "label": [1, 0, 0], "score": [0.1, 0.2, 0.3]}, Loss((2, 2), "float"), "both 'label' and 'score'"),
    ({"a": [], "b": []}, Loss((2, None), None), "is empty"),
])
def test_mismatches_raise_value_errors(columns, loss, message):
    """Each mismatch raises a ValueError naming what the loss expects and what the dataset has."""
    with pytest.raises(ValueError, match=message):
        check_dataset_for_loss(ds(**columns), loss)


def test_error_names_dataset_and_wrapped_loss():
    """For dict datasets the error names the dataset; for wrapper losses it names wrapper and inner loss."""
    with pytest.raises(ValueError, match=r"Wrapper\(Loss\) expects 2 text column\(s\), but dataset 'nli' has 1"):
        check_dataset_for_loss(ds(a=TEXT), Wrapper(Loss((2, 2), None)), name="nli")


def test_unused_label_warns():
    """A label column given to a label-free loss is ignored, with a warning (ST ignores it silently)."""
    with pytest.warns(UserWarning, match="takes no label; column 'label'"):
        check_dataset_for_loss(ds(a=TEXT, b=TEXT, label=[1, 1, 1]), Loss((2, None), None))


# Hand-derived from ST 3.4's SentenceTransformerDataCollator.maybe_warn_about_column_order name -> index table.
ORDER_CASES = [(["anchor", "positive", "negative"], False), (["positive", "anchor"], True),
               (["anchor", "negative", "positive"], True), (["question", "answer", "label"], False),
               (["answer", "question"], True), (["query", "response"], False), (["response", "query"], True),
               (["hypothesis", "entailment", "contradiction"], False), (["hypothesis", "contradiction", "entailment"], True),
               (["label", "anchor", "positive"], True), (["dataset_name", "anchor", "positive"], False),
               (["sentence1", "sentence2", "score"], False), (["text", "positive"], False)]


@pytest.mark.parametrize("columns,warns", ORDER_CASES)
def test_column_order_warning(columns, warns):
    """Well-known names away from their usual index warn (naming the fix); other layouts stay quiet."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert warn_column_order(columns) is warns
    assert len(caught) == int(warns)
    if warns:
        assert "select_columns" in str(caught[0].message)


@pytest.mark.slow
def test_column_order_warning_matches_st(caplog):
    """ST's own collator warns for exactly the same column layouts."""
    collator = pytest.importorskip("sentence_transformers.data_collator")
    for columns, warns in ORDER_CASES:
        caplog.clear()
        c = collator.SentenceTransformerDataCollator(tokenize_fn=None)
        with caplog.at_level("WARNING"):
            c.maybe_warn_about_column_order([n for n in columns if n != "dataset_name"])
        assert bool(caplog.records) is warns, columns


def test_real_tinyst_losses():
    """The checks read tinyst's own loss declarations: CoSENT (2 texts + float), Triplet (3 texts), Contrastive (0/1)."""
    losses = pytest.importorskip("tinyst.losses")
    pairs = ds(sentence1=TEXT, sentence2=TEXT, score=[0.2, 0.4, 1.0])
    check_dataset_for_loss(pairs, losses.CoSENTLoss(None))
    with pytest.raises(ValueError, match="TripletLoss expects 3 text column"):
        check_dataset_for_loss(pairs.remove_columns("score"), losses.TripletLoss(None))
    with pytest.raises(ValueError, match=r"ContrastiveLoss expects binary labels 0/1.*\[2\]"):
        check_dataset_for_loss(ds(a=TEXT, b=TEXT, label=[0, 1, 2]), losses.ContrastiveLoss(None))
