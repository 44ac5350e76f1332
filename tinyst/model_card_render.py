"""Writing the model card (README.md) that `SentenceTransformer.save()` puts beside the weights:
`generate_model_card` / `write_model_card`, from `model_card.SentenceTransformerModelCardData`.

Mirrors ST 3.4's `model_card_template.md`: YAML front matter written by hand (a string that is not a
plain identifier is double-quoted, non-ASCII and control characters escaped), then ST's sections.
Tables are laid out like transformers' `make_markdown_table`.
Not included: widget examples, CO2 emissions, hub look-ups.
"""
import importlib
import os
import platform
import re
from pathlib import Path
from textwrap import indent

from tinyst.model_card import SentenceTransformerModelCardData, _and, citations

DOCS = "https://sbert.net/docs/package_reference/sentence_transformer"
SIMILARITY = {"cosine": "Cosine Similarity", "dot": "Dot Product", "euclidean": "Euclidean Distance",
              "manhattan": "Manhattan Distance"}
VERSIONS = {"tinyst": "tinyst", "PyTorch": "torch", "Tokenizers": "tokenizers", "safetensors": "safetensors",
            "NumPy": "numpy", "PyArrow": "pyarrow"}


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
USAGE_IMPORT = "from sentence_transformers import SentenceTransformer"  # text of the card's snippet, never run
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
{usage_import}

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
                       usage_import=USAGE_IMPORT,
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
