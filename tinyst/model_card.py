"""The model card's data (README.md): `SentenceTransformerModelCardData` and the trainer callback that
fills it (datasets, losses, arguments, logs). `model_card_render.py` writes it as ST's README.md.

Mirrors `sentence_transformers/model_card.py` + `model_card_template.md` v3.4: the hub's YAML front matter
(language, license, tags incl. `loss:<Name>` / `dataset_size:N`, base_model, datasets, pipeline_tag,
library_name, metrics, model-index) and ST's sections: Model Details, Usage, Evaluation (a table per
evaluator, primary metric in bold), Training Details (per dataset: size, columns, statistics and samples of
the first rows, loss + config), hyper-parameters, Training Logs, Framework Versions, Citation. Tables are laid
out like transformers' `make_markdown_table`. The YAML is written by hand: a string that is not a plain
identifier is double-quoted, with every non-ASCII or control character escaped.
Not included: widget examples, CO2 emissions, hub look-ups (base model id, dataset languages), reusing the
README of an untrained hub model, merging the tables of same-class evaluators.
"""
import json
import re
import warnings
from collections import Counter
from dataclasses import dataclass, field

from torch import nn

IGNORED_ARGS = {"output_dir", "logging_dir", "logging_strategy", "logging_first_step", "logging_steps", "eval_steps",
                "evaluation_strategy", "eval_delay", "save_strategy", "save_steps", "save_total_limit",
                "metric_for_best_model", "greater_is_better", "report_to", "run_name"}  # as ST: not about the model
MIN_MEAN_MAX = {"min": min, "mean": lambda x: sum(x) / len(x), "max": max}


@dataclass
class SentenceTransformerModelCardData:
    """What the card says. Users may set the first block; the trainer and the evaluators fill the rest."""
    language: str | list = field(default_factory=list)
    license: str | None = None
    model_name: str | None = None
    model_id: str | None = None
    train_datasets: list = field(default_factory=list)  # [{"name": ..., "id": hub dataset id}, ...]
    eval_datasets: list = field(default_factory=list)
    task_name: str = ("semantic textual similarity, semantic search, paraphrase mining, text classification, "
                      "clustering, and more")
    tags: list = field(default_factory=lambda: ["sentence-transformers", "sentence-similarity", "feature-extraction"])
    base_model: str | None = None  # tinyst: settable here, since tinyst never asks the hub
    base_model_revision: str | None = None
    non_default_hyperparameters: dict = field(default_factory=dict)
    all_hyperparameters: dict = field(default_factory=dict)
    training_logs: list = field(default_factory=list)  # rows of the Training Logs table
    eval_results: dict = field(default_factory=dict, repr=False)  # evaluator -> (primary metric, latest metrics)
    citations: dict = field(default_factory=dict)
    best_model_step: int | None = None

    def __post_init__(self):
        self.language = [self.language] if isinstance(self.language, str) else list(self.language or [])
        self.tags = list(self.tags or [])
        for kind in ("train_datasets", "eval_datasets"):
            for d in getattr(self, kind):
                if not isinstance(d, dict) or not {"name", "id"} & set(d):
                    raise ValueError(f"{kind} entries must be dicts with a 'name' and/or an 'id', got {d!r}")
                d.setdefault("name", d.get("id"))
        if self.model_id and self.model_id.count("/") != 1:
            warnings.warn(f"model_id {self.model_id!r} should look like 'user/model'; ignoring it")
            self.model_id = None

    def add_tags(self, tags) -> None:
        self.tags += [t for t in dict.fromkeys([tags] if isinstance(tags, str) else tags) if t not in self.tags]

    def set_base_model(self, model_id: str, revision: str | None = None) -> None:
        self.base_model, self.base_model_revision = model_id, revision

    def set_losses(self, losses: list) -> None:
        self.citations = citations(losses)
        self.add_tags([f"loss:{type(loss).__name__}" for loss in losses])

    def set_evaluation_metrics(self, evaluator, metrics: dict, epoch=0, step=0) -> None:
        """Called by every evaluator: keep its latest metrics, put its primary one in the training log."""
        primary = getattr(evaluator, "primary_metric", None)
        self.eval_results[evaluator] = (primary, dict(metrics))
        from tinyst.evaluation import SequentialEvaluator

        subs = evaluator.evaluators if isinstance(evaluator, SequentialEvaluator) else None  # members' primaries
        keys = [getattr(e, "primary_metric", None) for e in subs] if subs else [primary]
        if primary:
            self.log_row(epoch, step, {k: v for k, v in metrics.items() if k in keys})

    def log_row(self, epoch, step, values: dict) -> None:
        if self.training_logs and self.training_logs[-1]["Step"] == step:
            self.training_logs[-1].update(values)
        else:
            self.training_logs.append({"Epoch": epoch, "Step": step, **values})


def citations(losses: list) -> dict:
    """{"Sentence Transformers": bibtex, "LossA and LossB": their shared bibtex, ...}"""
    from tinyst.losses.cosine_similarity import SBERT_CITATION

    by_text = {SBERT_CITATION.strip(): ["Sentence Transformers"]}
    for loss in losses:
        if isinstance(getattr(loss, "citation", None), str) and loss.citation.strip():
            by_text.setdefault(loss.citation.strip(), []).append(type(loss).__name__)
    return {_and(list(dict.fromkeys(names))): text for text, names in by_text.items()}


class ModelCardCallback:
    """Trainer callback (ST's ModelCardCallback): datasets, losses and arguments when the trainer is built,
    Training Logs rows from on_log / on_evaluate, the best step when training ends."""

    def __init__(self, trainer):
        model = trainer.model
        if model.model_card_data is None:
            model.model_card_data = SentenceTransformerModelCardData()
        card = self.card = model.model_card_data
        card.add_tags("generated_from_trainer")
        for kind, ds in (("train", trainer.train_dataset), ("eval", trainer.eval_dataset)):
            if ds is not None:
                given = getattr(card, f"{kind}_datasets")
                setattr(card, f"{kind}_datasets", dataset_infos(model, given, ds, trainer.loss, kind))
        if trainer.train_dataset is not None:
            card.add_tags(f"dataset_size:{sum(d['size'] for d in card.train_datasets)}")
        losses = list(trainer.loss.values()) if isinstance(trainer.loss, dict) else [trainer.loss]
        losses += [loss.loss for loss in losses if isinstance(getattr(loss, "loss", None), nn.Module)]  # Matryoshka's
        card.set_losses(list({id(loss): loss for loss in losses}.values()))
        from tinyst.training_args import SentenceTransformerTrainingArguments

        defaults = SentenceTransformerTrainingArguments().to_dict()
        card.all_hyperparameters = {k: v for k, v in trainer.args.to_dict().items() if k not in IGNORED_ARGS}
        card.non_default_hyperparameters = {k: v for k, v in card.all_hyperparameters.items()
                                            if k in defaults and v != defaults[k]}

    def on_log(self, args, state, logs=None, **kwargs) -> None:
        if logs and "loss" in logs:
            self.card.log_row(logs.get("epoch"), logs["step"], {"Training Loss": logs["loss"]})

    def on_evaluate(self, args, state, metrics=None, **kwargs) -> None:
        losses = {" ".join(k.split("_")[1:]): v for k, v in (metrics or {}).items() if k.endswith("_loss")}
        losses = {"Validation Loss": losses["loss"]} if list(losses) == ["loss"] else losses
        self.card.log_row((metrics or {}).get("epoch"), state.get("global_step", 0), losses)

    def on_train_end(self, args, state, **kwargs) -> None:
        found = re.search(r"checkpoint-(\d+)$", str(state.get("best_model_checkpoint") or ""))
        if args.load_best_model_at_end and found:
            self.card.best_model_step = int(found.group(1))


def dataset_infos(model, given: list, dataset, loss, kind: str) -> list:
    """Per dataset: name, size, columns, statistics of the first 1000 rows, 3 samples, loss and its config."""
    named = list(dataset.items()) if hasattr(dataset, "items") else [(None, dataset)]
    if given and len(given) != len(named):
        warnings.warn(f"the model card data names {len(given)} {kind}_datasets but the trainer has {len(named)}; "
                      "describing the trainer's datasets instead")
        given = []
    infos = []
    for i, (name, ds) in enumerate(named):
        info = {k: v for k, v in given[i].items() if k in ("name", "id", "revision")} if given else {}
        if not given and name and not re.fullmatch(r"_dataset_\d+", name):  # fit()'s names are no real names
            info["name"] = name
        head, the_loss = ds[:1000], loss[name] if isinstance(loss, dict) else loss
        config = getattr(the_loss, "get_config_dict", dict)()  # a user's own loss may have none
        try:
            config = json.dumps(config, indent=4)
        except TypeError:  # e.g. a module in the config
            config = str(config)
        infos.append({**info, "size": len(ds), "columns": list(ds.column_names),
                      "stats": {col: column_stats(model, values) for col, values in head.items()},
                      "examples": {col: values[:3] for col, values in head.items()},
                      "loss": {"class": type(the_loss), "config": config}})
    return infos


def column_stats(model, values: list) -> tuple:
    """(dtype, details) of a column, as ST: token lengths, label shares, number ranges or list sizes."""
    first = values[0] if values else None
    if isinstance(first, str):
        lengths = model.tokenize([str(v) for v in values])["attention_mask"].sum(dim=1).tolist()  # (N,)
        return "string", {k: f"{round(f(lengths), 2)} tokens" for k, f in MIN_MEAN_MAX.items()}
    if isinstance(first, (int, bool)):
        counts = Counter(values)
        return "int", {k: f"{'~' if len(counts) > 1 else ''}{counts[k] / len(values):.2%}" for k in sorted(counts)}
    if isinstance(first, float):
        return "float", {k: round(f(values), 2) for k, f in MIN_MEAN_MAX.items()}
    if isinstance(first, list):
        sizes = Counter(len(v) for v in values)
        if len(sizes) == 1:
            return "list", {"size": f"{len(first)} elements"}
        return "list", {"min": f"{min(sizes)} elements", "mean": f"{sum(sizes) / len(sizes):.2f} elements",
                        "max": f"{max(sizes)} elements"}
    return f"{type(first).__module__}.{type(first).__qualname__}", {}


def _and(items: list) -> str:
    """"a", "a and b", "a, b, and c" (ST's wording)."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + "," * (len(items) > 2) + " and " + items[-1]
