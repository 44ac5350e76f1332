"""The README.md model card after a short training run on a tiny model, against the card ST 3.4.1 writes
for the same run: YAML front matter (valid YAML, hub keys, tags), sections, dataset statistics, the
hyper-parameter list, the training-log table and evaluation metrics; ST loads the folder; YAML quoting."""
import random
import re
import warnings

import pytest
import yaml

import tinyst
from tinyst import SentenceTransformerModelCardData, losses
from tinyst.evaluation import EmbeddingSimilarityEvaluator
from tinyst.model_card_render import to_yaml
from tiny_models import corpus, make_tiny_model_dir

BASE = "sentence-transformers/paraphrase-MiniLM-L3-v2"
ARGS = dict(num_train_epochs=1, per_device_train_batch_size=8, learning_rate=1e-3, eval_strategy="steps",
            eval_steps=3, logging_steps=2, save_strategy="no", report_to="none", disable_tqdm=True)


def columns(n=48):
    lines = [s.split("\n")[0][:80] for s in corpus()]
    rng = random.Random(0)
    rows = [(rng.choice(lines), rng.choice(lines), round(rng.random(), 3)) for _ in range(n)]
    return {"sentence1": [r[0] for r in rows], "sentence2": [r[1] for r in rows], "score": [r[2] for r in rows]}


def evaluator_for(cls, cols):
    return cls(cols["sentence1"][:16], cols["sentence2"][:16], cols["score"][:16], name="sts-dev")


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return make_tiny_model_dir(tmp_path_factory.mktemp("card"), "bert")


@pytest.fixture(scope="module")
def ours(tiny_dir, tmp_path_factory):
    """(README text, trainer) of a tinyst run that saved its model."""
    out = tmp_path_factory.mktemp("ours")
    cols = columns()
    ds = tinyst.Dataset.from_dict(cols)
    model = tinyst.SentenceTransformer(str(tiny_dir), device="cpu",
                                       model_card_data=SentenceTransformerModelCardData(base_model=BASE))
    args = tinyst.SentenceTransformerTrainingArguments(output_dir=str(out / "run"), **ARGS)
    trainer = tinyst.SentenceTransformerTrainer(model=model, args=args, train_dataset=ds,
                                                eval_dataset=ds.select(range(16)), loss=losses.CoSENTLoss(model),
                                                evaluator=evaluator_for(EmbeddingSimilarityEvaluator, cols))
    trainer.train()
    model.save(str(out / "model"))
    return (out / "model" / "README.md").read_text(encoding="utf-8"), trainer, out / "model"


@pytest.fixture(scope="module")
def theirs(tiny_dir, tmp_path_factory):
    """README text ST 3.4.1 writes after the same run."""
    import datasets
    import sentence_transformers as st
    from sentence_transformers.evaluation import EmbeddingSimilarityEvaluator as STEvaluator

    out = tmp_path_factory.mktemp("theirs")
    cols = columns()
    ds = datasets.Dataset.from_dict(cols)
    model = st.SentenceTransformer(str(tiny_dir), device="cpu")
    args = st.SentenceTransformerTrainingArguments(output_dir=str(out / "run"), **ARGS)
    st.SentenceTransformerTrainer(model=model, args=args, train_dataset=ds, eval_dataset=ds.select(range(16)),
                                  loss=st.losses.CoSENTLoss(model), evaluator=evaluator_for(STEvaluator, cols)).train()
    model.save(str(out / "model"))
    return (out / "model" / "README.md").read_text(encoding="utf-8")


def front_matter(text):
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def headings(text):
    """Markdown headings outside HTML comments and code blocks."""
    return re.findall(r"^#+ .*$", re.sub(r"<!--.*?-->|```.*?```", "", text, flags=re.S), flags=re.M)


def section(text, start, end):
    return text[text.index(start):text.index(end)]


def test_front_matter_is_valid_yaml_with_hub_keys(ours, theirs):
    """The front matter parses as YAML; library/pipeline/tags/metrics equal ST's, base_model is ours."""
    mine, st_meta = front_matter(ours[0]), front_matter(theirs)
    assert mine["library_name"] == "sentence-transformers" and mine["pipeline_tag"] == "sentence-similarity"
    assert mine["tags"] == st_meta["tags"]
    assert {"loss:CoSENTLoss", "dataset_size:48", "generated_from_trainer"} <= set(mine["tags"])
    assert mine["base_model"] == BASE
    assert mine["metrics"] == st_meta["metrics"] == ["pearson_cosine", "spearman_cosine"]
    assert set(mine) == set(st_meta) - {"widget"} | {"base_model"}
    result, st_result = mine["model-index"][0]["results"][0], st_meta["model-index"][0]["results"][0]
    assert result["task"] == st_result["task"] and result["dataset"] == st_result["dataset"]
    assert [(m["type"], m["name"]) for m in result["metrics"]] == [(m["type"], m["name"]) for m in st_result["metrics"]]
    last_eval = [h for h in ours[1].state["log_history"] if "eval_sts-dev_spearman_cosine" in h][-1]
    assert result["metrics"][1]["value"] == pytest.approx(last_eval["eval_sts-dev_spearman_cosine"], abs=1e-12)


def test_sections_and_dataset_details_match_st(ours, theirs):
    """Same headings as ST's card; the training/evaluation dataset sections (stats, samples, loss) are identical."""
    assert headings(ours[0])[0] == f"# SentenceTransformer based on {BASE}"
    assert headings(theirs)[0] == "# SentenceTransformer"
    assert headings(ours[0])[1:] == headings(theirs)[1:]
    for start, end in (("### Training Dataset", "### Evaluation Dataset"),
                       ("### Evaluation Dataset", "### Training Hyperparameters")):
        assert section(ours[0], start, end).strip() == section(theirs, start, end).strip()


def test_hyperparameters_logs_and_metrics(ours, theirs):
    """Non-default arguments equal ST's; log table rows and eval metrics carry the values the trainer logged."""
    text, trainer, _ = ours
    def nondefault(t):
        return set(re.findall(r"^- `.*$", section(t, "#### Non-Default", "#### All"), flags=re.M))

    assert nondefault(text) == nondefault(theirs) == {"- `eval_strategy`: steps", "- `learning_rate`: 0.001",
                                                      "- `num_train_epochs`: 1", "- `disable_tqdm`: True"}
    table = section(text, "### Training Logs", "### Framework Versions").strip().splitlines()[1:]
    st_table = section(theirs, "### Training Logs", "### Framework Versions").strip().splitlines()[1:]
    assert table[:2] == st_table[:2]  # header and alignment line
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in table[2:]]
    assert [row[:2] for row in cells] == [[c.strip() for c in line.strip("|").split("|")][:2] for line in st_table[2:]]
    history = trainer.state["log_history"]
    for epoch, step, train_loss, val_loss, spearman in cells:
        logged = {k: v for h in history if h.get("step") == int(step) for k, v in h.items()}
        for cell, key in ((train_loss, "loss"), (val_loss, "eval_loss"), (spearman, "eval_sts-dev_spearman_cosine")):
            assert (cell == "-") if key not in logged else (float(cell) == pytest.approx(logged[key], abs=5e-5))
    metrics = section(text, "#### Semantic Similarity", "## Training Details")
    last = [h for h in history if "eval_sts-dev_pearson_cosine" in h][-1]
    assert f"| pearson_cosine      | {round(last['eval_sts-dev_pearson_cosine'], 4)}" in metrics
    assert f"| **spearman_cosine** | **{round(last['eval_sts-dev_spearman_cosine'], 4)}**" in metrics
    assert "* Evaluated with [<code>EmbeddingSimilarityEvaluator</code>]" in metrics
    assert "- tinyst: " in text and "- PyTorch: " in text and "#### CoSENTLoss\n```bibtex\n@online{kexuefm-8847" in text


def test_st_loads_the_saved_folder(ours):
    """sentence-transformers 3.4.1 loads the folder (README included) and embeds as tinyst does."""
    import sentence_transformers as st

    _, trainer, folder = ours
    loaded = st.SentenceTransformer(str(folder), device="cpu")
    assert loaded._model_card_text.startswith("---\n")
    texts = ["The cat sits on the mat.", "A man is playing a guitar."]
    theirs_emb = loaded.encode(texts, convert_to_tensor=True)
    ours_emb = tinyst.SentenceTransformer(str(folder), device="cpu").encode(texts, convert_to_tensor=True)
    assert (theirs_emb - ours_emb).abs().max().item() < 1e-5


def test_best_step_is_bold(tiny_dir, tmp_path):
    """With load_best_model_at_end, the log row of the best checkpoint's step is bold and explained."""
    cols = columns(32)
    ds = tinyst.Dataset.from_dict(cols)
    model = tinyst.SentenceTransformer(str(tiny_dir), device="cpu")
    args = tinyst.SentenceTransformerTrainingArguments(
        output_dir=str(tmp_path / "run"), num_train_epochs=2, per_device_train_batch_size=8, learning_rate=1e-3,
        eval_strategy="steps", eval_steps=2, save_steps=2, logging_steps=2, load_best_model_at_end=True,
        disable_tqdm=True)
    trainer = tinyst.SentenceTransformerTrainer(model=model, args=args, train_dataset=ds, eval_dataset=ds,
                                                loss=losses.CoSENTLoss(model))
    trainer.train()
    best = int(trainer.state["best_model_checkpoint"].rsplit("-", 1)[1])
    model.save(str(tmp_path / "model"))
    text = (tmp_path / "model" / "README.md").read_text()
    bold = [line for line in text.splitlines() if line.startswith("| **")]
    assert len(bold) == 1 and bold[0].split("|")[2].strip() == f"**{best}**"
    assert "* The bold row denotes the saved checkpoint." in text


NASTY = ["yes", "No", "null", "~", "1.0", "007", "1e3", "0x1F", "1_000", "12:30", ".inf", "a: b", "a:b", "#x", "x #y",
         "- x", "-x", '"q"', "it's", "\\", "tab\there", "new\nline", "émoji 🤗", "\x7f", "\u2028", "\x00", "",
         " lead",
         "trail ", "@x", "`x", "!x", "&x", "*x", "%x", "{x}", "[x]", "?", ":", "x:", "a  b", "dataset_size:48",
         "loss:CoSENTLoss", "sentence-transformers/all-MiniLM-L6-v2", "Semantic Similarity"]


def test_yaml_writer_round_trips_nasty_values():
    """Every string, number and nesting the writer emits parses back (PyYAML) to the same value."""
    doc = {"tags": NASTY, "n": [0, -3, 1.5, 2.5e-10, True, False, None], "nested": [{"k": "v", "l": ["a", {"x": 1}]}],
           "empty": [], "emptyd": {}, "keys": {s: s for s in NASTY if s}, "deep": [[1, [2, "yes"]], "z"]}
    assert yaml.safe_load("\n".join(to_yaml(doc))) == doc


def test_card_data_user_fields_and_errors(tiny_dir, tmp_path):
    """User metadata reaches the card (YAML-safe); bad dataset entries raise; a model_id without '/' is dropped."""
    with pytest.raises(ValueError, match="'name' and/or an 'id'"):
        SentenceTransformerModelCardData(train_datasets=[{"split": "train"}])
    with pytest.warns(UserWarning, match="should look like 'user/model'"):
        assert SentenceTransformerModelCardData(model_id="no-slash").model_id is None
    card = SentenceTransformerModelCardData(language="en", license="apache-2.0", model_name='My "model": v1 #2',
                                            model_id="me/my-model",
                                            train_datasets=[{"name": "STSb", "id": "sentence-transformers/stsb"}])
    model = tinyst.SentenceTransformer(str(tiny_dir), device="cpu", model_card_data=card)
    ds = tinyst.Dataset.from_dict(columns(16))
    args = tinyst.SentenceTransformerTrainingArguments(output_dir=str(tmp_path / "run"), max_steps=1, disable_tqdm=True,
                                                       save_strategy="no")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # one dataset named, one in the trainer: no mismatch warning
        trainer = tinyst.SentenceTransformerTrainer(model=model, args=args, train_dataset=ds,
                                                    loss=losses.CoSENTLoss(model))
    trainer.train()
    model.save(str(tmp_path / "m"))
    text = (tmp_path / "m" / "README.md").read_text()
    meta = front_matter(text)
    assert meta["language"] == ["en"] and meta["license"] == "apache-2.0"
    assert meta["datasets"] == ["sentence-transformers/stsb"]
    assert text.count('# My "model": v1 #2') == 1 and 'SentenceTransformer("me/my-model")' in text
    assert "#### STSb" in text
    assert "* Dataset: [STSb](https://huggingface.co/datasets/sentence-transformers/stsb)" in text
