"""The dataset <-> loss contract the trainer relies on, and checks with errors that say what is wrong.

Mirrors `SentenceTransformerDataCollator` (ST 3.4): `dataset_name` is routing, not data; the label is
the first of `label` / `score` present; every other column, in column order, is a text input; a
warning when well-known names sit at unexpected positions. ST only fails deep inside a loss; tinyst
checks up front against the loss's declared `n_inputs = (min, max)` and `label` kind
(None | "float" | "int" | "binary" | "vector" | "any"; see tinyst/losses/base.py).
Not included: `{column}_prompt_length` columns (the collator adds those itself).
"""
import warnings

import pyarrow as pa

LABEL_COLUMNS = ("label", "score")
ROUTING_COLUMNS = ("dataset_name",)
# ST's expected positions of well-known column names, by group (ST's maybe_warn_about_column_order)
NAME_GROUPS = (("anchor", "positive", "negative"), ("question", "answer"), ("query", "response"),
               ("hypothesis", "entailment", "contradiction"))


def _columns(ds) -> list:
    return [c for c in ds.column_names if c not in ROUTING_COLUMNS]


def label_column(ds):
    """The label column ST's collator would use (first of `label`, `score`), or None."""
    return next((c for c in LABEL_COLUMNS if c in ds.column_names), None)


def input_columns(ds) -> list:
    """The text columns fed to the model, in dataset column order."""
    return [c for c in _columns(ds) if c not in LABEL_COLUMNS]


def warn_column_order(column_names) -> bool:
    """Warn (once per call) when a well-known column sits where ST would not expect it; True if warned."""
    names = [c for c in column_names if c not in ROUTING_COLUMNS]
    for group in NAME_GROUPS:
        for expected, col in enumerate(group):
            if col in names and names.index(col) != expected:
                warnings.warn(
                    f"column {col!r} is at index {names.index(col)} but is usually at index {expected}: losses read "
                    f"columns by position, not name (e.g. MultipleNegativesRankingLoss takes the first as anchor). "
                    f"Reorder with dataset.select_columns({[c for c in group if c in names]} + other columns)",
                    stacklevel=3)
                return True
    return False


def loss_inner(loss):
    """The innermost loss under wrappers (`.loss`) such as MatryoshkaLoss."""
    while hasattr(getattr(loss, "loss", None), "forward"):
        loss = loss.loss
    return loss


def loss_requirements(loss) -> tuple:
    """(name, n_inputs, label kind) read from the loss, through wrappers (`.loss`) such as MatryoshkaLoss."""
    inner, name = loss, type(loss).__name__
    while hasattr(getattr(inner, "loss", None), "forward"):
        inner = inner.loss
        name += f"({type(inner).__name__})"
    n_inputs = getattr(inner, "n_inputs", (1, None))
    return name, tuple(n_inputs), getattr(inner, "label", "any")


def _describe(n_inputs) -> str:
    lo, hi = n_inputs
    return f"{lo}" if lo == hi else (f"at least {lo}" if hi is None else f"{lo} to {hi}")


def _is_text(t) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t) or getattr(pa.types, "is_string_view", lambda _: False)(t)


def _is_number(t) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)


def check_dataset_for_loss(ds, loss, name=None) -> None:
    """Raise ValueError when `loss` cannot train on `ds`, saying what the loss expects and what `ds` has."""
    import pyarrow.compute as pc  # lazily: ~0.1 s of import time

    lname, (lo, hi), kind = loss_requirements(loss)
    where = f"dataset {name!r}" if name else "the dataset"
    columns = _columns(ds)
    if len(ds) == 0:
        raise ValueError(f"{where} is empty (0 rows, columns {columns}): {lname} has nothing to train on")
    warn_column_order(columns)
    labels = [c for c in LABEL_COLUMNS if c in columns]
    if len(labels) > 1:
        raise ValueError(f"{where} has both 'label' and 'score' columns; {lname} takes one label column: drop or rename one")
    inputs = input_columns(ds)
    if len(inputs) < lo or (hi is not None and len(inputs) > hi):
        raise ValueError(f"{lname} expects {_describe((lo, hi))} text column(s), but {where} has {len(inputs)}: {inputs} "
                         f"(all columns: {columns}; 'label'/'score' is the label, every other column is an input)")
    table = ds.data
    for col in inputs:
        t = table.schema.field(col).type
        if not _is_text(t):
            sample = next((v for v in table.column(col).slice(0, 100).to_pylist() if v is not None), None)
            raise ValueError(f"text column {col!r} of {where} holds {t} values (e.g. {sample!r}), not strings; "
                             f"{lname} embeds every non-label column, so convert or remove it")
        if table.column(col).null_count:
            first = pc.index(pc.is_null(table.column(col)), True).as_py()
            raise ValueError(f"text column {col!r} of {where} has {table.column(col).null_count} missing (None) "
                             f"cells, the first at row {first}")
    if kind is None:
        if labels:
            warnings.warn(f"{lname} takes no label; column {labels[0]!r} of {where} will be ignored", stacklevel=2)
        return
    if not labels:
        raise ValueError(f"{lname} needs a label column named 'label' or 'score' ({kind} values), but {where} has "
                         f"columns {columns}: rename the label column")
    label = table.column(labels[0])
    t, what = label.type, f"label column {labels[0]!r} of {where}"
    if label.null_count:
        first = pc.index(pc.is_null(label), True).as_py()
        raise ValueError(f"{what} has {label.null_count} missing (None) values, the first at row {first}")
    if kind in ("float", "binary") and not _is_number(t):
        raise ValueError(f"{lname} expects one number per row as label, but {what} holds {t}")
    if kind == "int" and not (pa.types.is_integer(t) or pa.types.is_boolean(t)):
        raise ValueError(f"{lname} expects integer class labels, but {what} holds {t} (cast it to int)")
    is_list = pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)
    values = pc.list_flatten(label) if is_list else label
    if pa.types.is_floating(values.type):
        bad = pc.invert(pc.is_finite(values))
        n_bad = pc.sum(bad).as_py() or 0
        if n_bad:  # subtle: found now, not as a NaN loss thousands of steps into training
            first = pc.index(bad, True).as_py()
            row = pc.list_parent_indices(label)[first].as_py() if is_list else first
            raise ValueError(f"{what} holds {n_bad} NaN or infinite value(s), the first at row {row}; "
                             f"{lname} needs finite numbers")
    n_classes = getattr(loss_inner(loss), "num_labels", None)  # SoftmaxLoss: classes 0 .. num_labels - 1
    if kind == "int" and isinstance(n_classes, int) and len(label):
        lo_v, hi_v = pc.min_max(label).values()
        if lo_v.as_py() < 0 or hi_v.as_py() >= n_classes:
            raise ValueError(f"{lname} has num_labels={n_classes}, so labels must be in [0, {n_classes}), but {what} "
                             f"holds values from {lo_v.as_py()} to {hi_v.as_py()}")
    if kind == "binary":
        bad = [v for v in pc.unique(label).to_pylist() if v not in (0, 1)]
        if bad:
            raise ValueError(f"{lname} expects binary labels 0/1, but {what} also holds {sorted(bad)[:10]}")
    if kind == "vector" and not ((pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t))
                                 and _is_number(t.value_type)):
        raise ValueError(f"{lname} expects a vector of numbers per row as label (e.g. teacher embeddings), "
                         f"but {what} holds {t}")
