"""Reliability catalogue, data: messy training data reaches the trainer and is refused before step 1, with an
error that says what the loss expected, what the data holds and where (dataset, column, row); nothing is written.

Already covered elsewhere (not repeated): the check_dataset_for_loss table (test_datasets_columns.py:
missing/extra columns, missing label, float/str/non-binary labels, both label and score), loss-level input
checks (test_losses_checks.py: column count, NaN label, label shapes, SoftmaxLoss range), sampler sizes
(test_sampler.py::test_batch_size_errors), mixed types in from_dict and in files (test_datasets.py,
test_datasets_load.py::test_bad_inputs_raise_clear_errors).
"""
import pytest

import tinyst
from tinyst import losses
from tiny_models import make_tiny_model_dir

S = ["A man plays a guitar.", "The cat sits.", "Dogs run in snow.", "It rains.", "A child reads.", "Birds sing."]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return tinyst.SentenceTransformer(str(make_tiny_model_dir(tmp_path_factory.mktemp("rd"), "bert")), device="cpu")


def pairs(**extra):
    cols = {"sentence1": S, "sentence2": S[::-1], "score": [0.1, 0.9, 0.5, 0.3, 0.7, 0.2]}
    cols.update(extra)
    return tinyst.Dataset.from_dict({k: v for k, v in cols.items() if v is not None})


def nli(labels):
    return tinyst.Dataset.from_dict({"sentence1": S, "sentence2": S[::-1], "label": labels})


def softmax(m):
    return losses.SoftmaxLoss(m, m.get_sentence_embedding_dimension(), num_labels=3)


CASES = [  # (id, train_dataset, loss factory, extra args, error, message)
    ("too few text columns", lambda: pairs(sentence2=None, score=None), losses.MultipleNegativesRankingLoss, {},
     ValueError, r"MultipleNegativesRankingLoss expects at least 2 text column\(s\), but the dataset has 1: "
                 r"\['sentence1'\]"),
    ("extra text column", lambda: pairs(note=S), losses.CoSENTLoss, {},
     ValueError, r"CoSENTLoss expects 2 text column\(s\), but the dataset has 3: \['sentence1', 'sentence2', 'note'\]"),
    ("wrong number of inputs", lambda: pairs(score=None), losses.TripletLoss, {},
     ValueError, r"TripletLoss expects 3 text column\(s\), but the dataset has 2"),
    ("None text", lambda: pairs(sentence2=["a", "b", None, "d", "e", "f"]), losses.CoSENTLoss, {},
     ValueError, r"text column 'sentence2' of the dataset has 1 missing \(None\) cells, the first at row 2"),
    ("non-string text column", lambda: pairs(id=list(range(6))), losses.MultipleNegativesRankingLoss, {},
     ValueError, r"text column 'id' of the dataset holds int64 values \(e\.g\. 0\), not strings"),
    ("NaN score", lambda: pairs(score=[0.1, float("nan"), 0.5, 0.3, 0.7, 0.2]), losses.CoSENTLoss, {},
     ValueError, r"train_dataset: label column 'score' of the dataset holds 1 NaN or infinite value\(s\), "
                 r"the first at row 1"),
    ("inf score", lambda: pairs(score=[0.1, 0.2, 0.5, 0.3, 0.7, float("-inf")]), losses.CosineSimilarityLoss, {},
     ValueError, r"label column 'score' of the dataset holds 1 NaN or infinite value\(s\), the first at row 5"),
    ("NaN in a vector label", lambda: tinyst.Dataset.from_dict(
        {"text": S[:2], "label": [[0.0] * 32, [float("nan")] + [0.0] * 31]}), losses.MSELoss, {},
     ValueError, r"label column 'label' of the dataset holds 1 NaN or infinite value\(s\), the first at row 1"),
    ("label out of range (SoftmaxLoss)", lambda: nli([0, 1, 2, 3, 1, 0]), softmax, {},
     ValueError, r"SoftmaxLoss has num_labels=3, so labels must be in \[0, 3\), but label column 'label' of the "
                 r"dataset holds values from 0 to 3"),
    ("negative label (SoftmaxLoss)", lambda: nli([0, 1, -1, 2, 1, 0]), softmax, {},
     ValueError, r"labels must be in \[0, 3\).*from -1 to 2"),
    ("string labels (SoftmaxLoss)", lambda: nli(["entailment", "neutral"] * 3), softmax, {},
     ValueError, r"SoftmaxLoss expects integer class labels, but label column 'label' of the dataset holds string"),
    ("vector label for a score loss", lambda: pairs(score=[[0.1, 0.2]] * 6), losses.CoSENTLoss, {},
     ValueError, r"CoSENTLoss expects one number per row as label, but label column 'score' .* holds list"),
    ("empty dataset", lambda: pairs().select([]), losses.CoSENTLoss, {},
     ValueError, r"the dataset is empty \(0 rows, columns \['sentence1', 'sentence2', 'score'\]\)"),
    ("empty split in a dict", lambda: {"sts": pairs(), "nli": pairs().select([])}, losses.CoSENTLoss, {},
     ValueError, r"train_dataset: dataset 'nli' is empty"),
    ("dataset of the wrong type", lambda: [{"sentence1": "a", "sentence2": "b", "score": 0.5}], losses.CoSENTLoss, {},
     ValueError, r"datasets must be tinyst\.Dataset, DatasetDict or dict, got list"),
    ("dataset without a loss", lambda: {"sts": pairs(), "nli": pairs()}, lambda m: {"sts": losses.CoSENTLoss(m)}, {},
     ValueError, r"no loss for dataset 'nli'; the loss dict has keys \['sts'\]"),
]


@pytest.mark.parametrize("name,data,loss,kw,error,message", CASES, ids=[c[0] for c in CASES])
def test_bad_training_data_refused_at_construction(name, data, loss, kw, error, message, model, tmp_path):
    """The trainer refuses the data when it is built, naming the loss, the column, the row; no output is written."""
    args = tinyst.SentenceTransformerTrainingArguments(output_dir=str(tmp_path / "out"), disable_tqdm=True, **kw)
    with pytest.raises(error, match=message):
        tinyst.SentenceTransformerTrainer(model=model, args=args, train_dataset=data(), loss=loss(model))
    assert not (tmp_path / "out").exists()


def test_bad_eval_data_refused_too(model, tmp_path):
    """The eval dataset goes through the same checks: a NaN score there is named before training starts."""
    args = tinyst.SentenceTransformerTrainingArguments(output_dir=str(tmp_path / "out"), eval_strategy="steps",
                                                       eval_steps=2, disable_tqdm=True)
    bad = {"dev": pairs(score=[float("nan")] * 6)}
    with pytest.raises(ValueError, match=r"eval_dataset: label column 'score' of dataset 'dev' holds 6 NaN"):
        tinyst.SentenceTransformerTrainer(model=model, args=args, train_dataset=pairs(), eval_dataset=bad,
                                          loss=losses.CoSENTLoss(model))


def test_batch_larger_than_dataset_with_drop_last(model, tmp_path):
    """batch_size above the row count with dataloader_drop_last would train on nothing: refused with both sizes."""
    args = tinyst.SentenceTransformerTrainingArguments(output_dir=str(tmp_path / "out"), per_device_train_batch_size=8,
                                                       dataloader_drop_last=True, disable_tqdm=True)
    trainer = tinyst.SentenceTransformerTrainer(model=model, args=args, train_dataset=pairs(),
                                                loss=losses.CoSENTLoss(model))
    with pytest.raises(ValueError, match=r"batch_size=8 is larger than the 6 rows"):
        trainer.train()
    assert not (tmp_path / "out").exists()


def test_prompt_that_is_not_a_string(model, tmp_path):
    """A non-str prompt is named with its column when the first batch is built; no checkpoint is written."""
    args = tinyst.SentenceTransformerTrainingArguments(output_dir=str(tmp_path / "out"), prompts={"sentence1": 3},
                                                       per_device_train_batch_size=2, save_steps=1, disable_tqdm=True)
    trainer = tinyst.SentenceTransformerTrainer(model=model, args=args, train_dataset=pairs(),
                                                loss=losses.CoSENTLoss(model))
    with pytest.raises(ValueError, match=r"prompt for column 'sentence1' must be a str, got int"):
        trainer.train()
    assert not list((tmp_path / "out").glob("checkpoint-*"))


@pytest.mark.parametrize("build,message", [
    (lambda: tinyst.Dataset.from_list([{"text": "a", "score": 0.5}, {"text": "b", "score": "high"}]),
     r"column 'score' mixes value types \['float', 'str'\]"),
    (lambda: tinyst.Dataset.from_list([{"text": "a"}, {"text": ["b", "c"]}]), r"column 'text' mixes value types"),
    (lambda: tinyst.Dataset.from_dict({"text": "one sentence", "score": [0.5]}),
     r"column 'text' must be a list of values \(one per row\), got str"),
    (lambda: tinyst.Dataset.from_dict({"text": ["a"], "score": 0.5}), r"column 'score' must be a list of values"),
], ids=["float and str rows", "str and list rows", "bare str column", "bare number column"])
def test_mixed_or_scalar_columns(build, message):
    """Rows whose types disagree, or a bare value where a column list belongs (HF splits a str into characters)."""
    with pytest.raises(TypeError, match=message):
        build()
