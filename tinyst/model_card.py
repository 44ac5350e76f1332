"""The model card (README.md): `SentenceTransformerModelCardData`, the trainer callback that fills it,
and `write_model_card`, which `SentenceTransformer.save()` calls.

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
import importlib
import json
import os
import platform
import re
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from textwrap import indent

from torch import nn

DOCS = "https://sbert.net/docs/package_reference/sentence_transformer"
SIMILARITY = {"cosine": "Cosine Similarity", "dot": "Dot Product", "euclidean": "Euclidean Distance",
              "manhattan": "Manhattan Distance"}
IGNORED_ARGS = {"output_dir", "logging_dir", "logging_strategy", "logging_first_step", "logging_steps", "eval_steps",
                "evaluation_strategy", "eval_delay", "save_strategy", "save_steps", "save_total_limit",
                "metric_for_best_model", "greater_is_better", "report_to", "run_name"}  # as ST: not about the model
VERSIONS = {"tinyst": "tinyst", "PyTorch": "torch", "Tokenizers": "tokenizers", "safetensors": "safetensors",
            "NumPy": "numpy", "PyArrow": "pyarrow"}
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


# -- markdown -----------------------------------------------------------------------------------------
def _cell(v) -> str:
    s = str(v)
    return f"{v:.4f}" if isinstance(v, float) and "." in s and len(s.split(".")[1]) > 4 else s


def markdown_table(rows: list, centered: bool = False) -> str:
    """transformers' make_markdown_table (padded columns, floats to 4 decimals); ST left-aligns most tables."""
    widths = [max(len(str(k)), *(len(_cell(r.get(k, "-"))) for r in rows)) for k in rows[0]]
    line = lambda cells: "".join(f"| {c}" + " " * (w - len(c) + 1) for c, w in zip(cells, widths)) + "|\n"  # noqa: E731
    sep = "".join(f"|:{'-' * w}{':' if centered else '-'}" for w in widths) + "|\n"
    return line([str(k) for k in rows[0]]) + sep + "".join(line([_cell(r.get(k, "-")) for k in rows[0]]) for r in rows)


def _and(items: list) -> str:
    """"a", "a and b", "a, b, and c" (ST's wording)."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + "," * (len(items) > 2) + " and " + items[-1]


def _link(cls, page: str) -> str:
    """A link to ST's docs for a class ST has (tinyst mirrors its names), else the class path."""
    if cls.__module__.split(".")[0] not in ("tinyst", "sentence_transformers"):
        return f"<code>{cls.__module__}.{cls.__qualname__}</code>"
    anchor = cls.__name__.lower() if page == "losses" else f"sentence_transformers.evaluation.{cls.__name__}"
    return f"[<code>{cls.__name__}</code>]({DOCS}/{page}.html#{anchor})"


def _sample(v) -> str:
    v = str(v[:5])[:-1] + ", ...]" if isinstance(v, list) and len(v) > 5 else v
    v = v[:1000] + "..." if isinstance(v, str) and len(v) > 1000 else v
    return "<code>" + str(v).replace("\n", "<br>").replace("|", "\\|") + "</code>"  # one table row per sample


def _dataset_section(info: dict, kind: str) -> list:
    name = info.get("name")
    html = lambda d: "<ul><li>" + "</li><li>".join(f"{k}: {v}" for k, v in d.items()) + "</li></ul>"  # noqa: E731
    stats = [{"": "type", **{c: s[0] for c, s in info["stats"].items()}},
             {"": "details", **{c: html(s[1]) for c, s in info["stats"].items()}}]
    samples = [{c: _sample(v[i]) for c, v in info["examples"].items()} for i in range(min(3, info["size"]))]
    return [f"#### {name or 'Unnamed Dataset'}", "", *([f"* Dataset: {_dataset_link(info)}"] if name else []),
            f"* Size: {info['size']:,} {kind} samples",
            f"* Columns: {_and([f'<code>{c}</code>' for c in info['columns']])}",
            f"* Approximate statistics based on the first {min(info['size'], 1000)} samples:",
            indent(markdown_table(stats), "  ") + "* Samples:", indent(markdown_table(samples), "  ")
            + f"* Loss: {_link(info['loss']['class'], 'losses')} with these parameters:",
            indent(f"```json\n{info['loss']['config']}\n```", "  "), ""]


def _dataset_link(d: dict) -> str:
    return f"[{d['name']}](https://huggingface.co/datasets/{d['id']})" if d.get("id") else d["name"]


def _evaluator_metrics(evaluator, primary, metrics) -> tuple:
    """(name, primary, metrics) without the evaluator's `name_` prefix, as ST's tables show them."""
    name = getattr(evaluator, "name", None) or ""
    if name and all(k.startswith(name + "_") for k in metrics):
        metrics = {k[len(name) + 1:]: v for k, v in metrics.items()}
        primary = primary[len(name) + 1:] if primary and primary.startswith(name + "_") else primary
    return name, primary, {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) or hasattr(v, "item")}


# -- YAML front matter --------------------------------------------------------------------------------
_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-/]*(?:[: ][A-Za-z0-9_.\-/]+)*")  # never ": " / " #" / leading digit
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t"}


def yaml_scalar(v) -> str:
    """A YAML scalar: identifiers stay plain, every other string is double-quoted with escapes."""
    v = v.item() if hasattr(v, "item") else v  # numpy / torch scalars
    if v is None or isinstance(v, bool):
        return {None: "null", True: "true", False: "false"}[v]
    if isinstance(v, (int, float)):
        return repr(v) if v == v and abs(v) != float("inf") else ".nan" if v != v else ("-.inf" if v < 0 else ".inf")
    v = str(v)
    if _PLAIN.fullmatch(v) and v.lower() not in {"true", "false", "yes", "no", "on", "off", "y", "n", "null"}:
        return v

    def code(c):  # \xXX, \uXXXX or \UXXXXXXXX: YAML's own escapes, so PyYAML reads the exact character back
        n = ord(c)
        return f"\\x{n:02x}" if n < 0x100 else f"\\u{n:04x}" if n < 0x10000 else f"\\U{n:08x}"

    return '"' + "".join(_ESCAPES.get(c) or (c if " " <= c <= "~" else code(c)) for c in v) + '"'


def to_yaml(obj, pad: str = "") -> list:
    """Block-style YAML lines for nested dicts and lists."""
    lines = []
    for key, v in obj.items() if isinstance(obj, dict) else ((None, v) for v in obj):
        head = f"{pad}-" if key is None else f"{pad}{yaml_scalar(key)}:"
        v = list(v) if isinstance(v, tuple) else v
        if not isinstance(v, (dict, list)):
            lines.append(f"{head} {yaml_scalar(v)}")
        elif not v:
            lines.append(f"{head} {'{}' if isinstance(v, dict) else '[]'}")
        elif key is None:  # a list item: its first line follows the "- "
            sub = to_yaml(v, pad + "  ")
            lines += [f"{head} {sub[0].lstrip()}", *sub[1:]]
        else:
            lines += [head, *to_yaml(v, pad + ("  " if isinstance(v, dict) else ""))]
    return lines


# -- the card -------------------------------------------------------------------------------------------
HEAD = """---
{front_matter}
---

# {title}

This is a [sentence-transformers](https://www.SBERT.net) model {origin}. It maps sentences & paragraphs to a \
{dim}-dimensional dense vector space and can be used for {task}. It was saved by tinyst.

## Model Details

### Model Description
- **Model Type:** Sentence Transformer
{details}

### Model Sources

- **Documentation:** [Sentence Transformers Documentation](https://sbert.net)
- **Repository:** [Sentence Transformers on GitHub](https://github.com/UKPLab/sentence-transformers)
- **Hugging Face:** [Sentence Transformers on Hugging Face](https://huggingface.co/models?library=sentence-transformers)

### Full Model Architecture

```
{architecture}
```

## Usage

### Direct Usage (Sentence Transformers)

```python
from sentence_transformers import SentenceTransformer

model = SentenceTransformer("{model_id}")
sentences = ["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium."]
embeddings = model.encode(sentences)  # (3, {dim})
similarities = model.similarity(embeddings, embeddings)  # (3, 3)
```
"""


def _front_matter(card, title: str, datasets: list, evals: list) -> str:
    results = [{"task": {"type": ev.description.lower().replace(" ", "-"), "name": ev.description},
                "dataset": {"name": name.replace("_", " ").replace("-", " ") or "Unknown", "type": name or "unknown"},
                "metrics": [{"type": k, "value": v, "name": k.replace("_", " ").title()} for k, v in m.items()]}
               for ev, name, _, m in evals]
    meta = {"language": card.language, "license": card.license, "tags": card.tags, "base_model": card.base_model,
            "datasets": list(dict.fromkeys(d["id"] for d in datasets if d.get("id"))),
            "pipeline_tag": "sentence-similarity", "library_name": "sentence-transformers",
            "metrics": list(dict.fromkeys(k for *_, m in evals for k in m)),
            "model-index": [{"name": title, "results": results}] if results else []}
    return "\n".join(to_yaml({k: v for k, v in meta.items() if v not in (None, [], "")}))


def generate_model_card(model, model_name=None, train_datasets=None) -> str:
    card = getattr(model, "model_card_data", None) or SentenceTransformerModelCardData()
    trained = card.train_datasets or [{"name": n} for n in train_datasets or []]  # save(train_datasets=[names])
    base, named, s = card.base_model, [d for d in trained if d.get("name")], lambda items: "s" * (len(items) > 1)
    title = card.model_name or (f"SentenceTransformer based on {base}" if base else "SentenceTransformer")
    evals = [(ev, *_evaluator_metrics(ev, primary, m)) for ev, (primary, m) in card.eval_results.items()]
    base_link = f"[{base}](https://huggingface.co/{base})" if base else ""
    revision = f" <!-- at revision {card.base_model_revision} -->" if card.base_model_revision else ""
    details = [f"- **Base model:** {base_link}{revision}"] if base else []
    details += [f"- **Maximum Sequence Length:** {model.max_seq_length} tokens",
                f"- **Output Dimensionality:** {model.get_sentence_embedding_dimension()} dimensions",
                f"- **Similarity Function:** {SIMILARITY.get(model.similarity_fn_name, model.similarity_fn_name)}"]
    details += [f"- **Training Dataset{s(named)}:**", *[f"    - {_dataset_link(d)}" for d in named]] if named else []
    details += [f"- **Language{s(card.language)}:** {', '.join(card.language)}"] if card.language else []
    details += [f"- **License:** {card.license}"] if card.license else []
    on = f" on the {_and([_dataset_link(d) for d in named])} dataset{s(named)}" if named else ""
    model_id = card.model_id or (model_name if model_name and not Path(model_name).exists() else None)
    out = [HEAD.format(front_matter=_front_matter(card, title, trained + card.eval_datasets, evals), title=title,
                       origin=("finetuned from " + base_link if base else "trained") + on, task=card.task_name,
                       dim=model.get_sentence_embedding_dimension(), details="\n".join(details),
                       architecture=repr(model), model_id=model_id or "sentence_transformers_model_id")]
    out += ["## Evaluation", "", "### Metrics", ""] if evals else []
    for ev, name, primary, m in evals:
        rows = [{"Metric": f"**{k}**" if k == primary else k,
                 "Value": f"**{round(v, 4)}**" if k == primary else round(v, 4)} for k, v in m.items()]
        out += [f"#### {ev.description}", "", *([f"* Dataset: `{name}`"] if name else []),
                f"* Evaluated with {_link(type(ev), 'evaluation')}", "", markdown_table(rows)]
    out += ["## Training Details", ""]
    for kind, infos in (("training", card.train_datasets), ("evaluation", card.eval_datasets)):
        infos = [d for d in infos if "size" in d]  # described by a trainer
        out += [f"### {kind.title()} Dataset{s(infos)}", ""] if infos else []
        out += [line for d in infos for line in _dataset_section(d, kind)]
    if card.all_hyperparameters:
        hp = lambda d: [f"- `{k}`: {v}" for k, v in d.items()]  # noqa: E731
        nd = card.non_default_hyperparameters
        out += ["### Training Hyperparameters", *(["#### Non-Default Hyperparameters", "", *hp(nd), ""] if nd else []),
                "#### All Hyperparameters", "<details><summary>Click to expand</summary>", "",
                *hp(card.all_hyperparameters), "", "</details>", ""]
    out += ["### Training Logs", _training_logs(card)] if card.training_logs else []
    out += ["### Framework Versions", f"- Python: {platform.python_version()}",
            *[f"- {k}: {importlib.import_module(m).__version__}" for k, m in VERSIONS.items()], "",
            "## Citation", "", "### BibTeX", ""]
    for names, text in (card.citations or citations([])).items():
        out += [f"#### {names}", "```bibtex", text, "```", ""]
    return "\n".join(out)


def _training_logs(card) -> str:
    """Epoch | Step | Training Loss | Validation Loss | other losses | evaluator metrics; the best step bold."""
    keys = list(dict.fromkeys(k for row in card.training_logs for k in row))
    order = {"Epoch": 0, "Step": 1, "Training Loss": 2, "Validation Loss": 3}
    keys = sorted(keys, key=lambda k: order.get(k, 4 if k.endswith("loss") else 5 + keys.index(k)))
    bold = lambda r, k: f"**{round(r[k], 4) if k in r else '-'}**"  # noqa: E731
    rows = [{k: bold(r, k) if r["Step"] == card.best_model_step else r.get(k, "-") for k in keys}
            for r in card.training_logs]
    table = markdown_table(rows, centered=True)
    table += "* The bold row denotes the saved checkpoint.\n" if card.best_model_step is not None else ""
    return f"<details><summary>Click to expand</summary>\n\n{table}</details>\n" if len(rows) > 100 else table


def write_model_card(model, folder, model_name=None, train_datasets=None) -> None:
    """Write README.md into `folder` (through a temp file, so a crash leaves no half card)."""
    path = Path(folder) / "README.md"
    tmp = path.with_name(f".README.md.tmp-{os.getpid()}")
    try:
        tmp.write_text(generate_model_card(model, model_name, train_datasets), encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
