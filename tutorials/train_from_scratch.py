# %% [markdown]
# # Train an embedding model from scratch, offline, in a few minutes on a laptop CPU
#
# The main job of tinyst. With no arguments it needs nothing but this Python installation:
# 1. builds a retrieval training set from the standard library's own docstrings
#    (query = a docstring's first sentence, document = the signature + the rest of the docstring),
# 2. trains a WordPiece tokenizer on the training texts with `tokenizers`,
# 3. builds a small randomly initialised BERT (`tinyst.sentence_transformer.from_config`),
# 4. trains it with MultipleNegativesRankingLoss and the NO_DUPLICATES batch sampler,
# 5. scores it before and after with InformationRetrievalEvaluator on held-out queries,
# 6. saves it in the sentence-transformers layout and writes a loss/metric curve (with matplotlib).
#
# Flags switch it to finetuning: `--model ../shared/models/paraphrase-MiniLM-L3-v2 --data stsb`
# (CoSENTLoss + EmbeddingSimilarityEvaluator on STSb test) or `--data <file or dataset folder>`
# (a `score`/`label` column -> CoSENT, else the first two text columns -> MNRL + retrieval).
# Mirrors the ST v3 blog recipe (model, dataset, loss, args, evaluator, trainer).

# %%
import time

import torch

from data import output_dir, parse_args, read_stsb, report, require, retrieval_qrels, stdlib_pairs, train_wordpiece
from tinyst import Dataset, DatasetDict, SentenceTransformer, load_dataset
from tinyst.evaluation import EmbeddingSimilarityEvaluator, InformationRetrievalEvaluator
from tinyst.losses import CoSENTLoss, MultipleNegativesRankingLoss
from tinyst.sentence_transformer import from_config
from tinyst.trainer import SentenceTransformerTrainer
from tinyst.training_args import BatchSamplers, SentenceTransformerTrainingArguments

args = parse_args(
    "Train a small embedding model from scratch on stdlib docstrings (offline), or finetune --model on --data.",
    data=(str, "stdlib", "stdlib (default), stsb, or a data file / dataset folder for tinyst.load_dataset"),
    epochs=(float, None, "training epochs (default: 6 from scratch, 1 when finetuning)"),
    batch_size=(int, None, "training batch size (default: 64 from scratch, 16 when finetuning)"),
    lr=(float, None, "peak learning rate (default: 2e-3 from scratch, 2e-5 when finetuning)"),
)
scratch = args.model is None
epochs = args.epochs or (6 if scratch else 1)
batch_size = args.batch_size or (64 if scratch else 16)
lr = args.lr or (2e-3 if scratch else 2e-5)
out = output_dir(args, "train_from_scratch")
t_start = time.time()
torch.manual_seed(args.seed)


# %% [markdown]
# ## 1. Data: train rows, and an evaluator on held-out rows
# Pairs (query, document) train with in-batch negatives and are scored by retrieval: each held-out
# query must find its own document among all documents. Scored pairs train with CoSENT and are
# scored by the Spearman correlation of cosine similarity with the gold score.

# %%
def retrieval_task(train_rows: dict, test_rows: dict, columns: tuple, fast: bool):
    """MNRL rows plus an IR evaluator: held-out queries against every document (train ones too)."""
    q_col, d_col = columns
    queries, corpus, relevant = retrieval_qrels(test_rows[q_col], test_rows[d_col], train_rows[d_col])
    evaluator = InformationRetrievalEvaluator(queries, corpus, relevant, name="held-out", batch_size=64,
                                              write_csv=not fast)
    return Dataset.from_dict({q_col: train_rows[q_col], d_col: train_rows[d_col]}), evaluator


def split_rows(rows: dict, n_test: int, seed: int) -> tuple:
    ds = Dataset.from_dict(rows).train_test_split(test_size=n_test, seed=seed)
    return ds["train"].to_dict(), ds["test"].to_dict()


if args.data == "stdlib":
    pairs = stdlib_pairs(max_files=120 if args.fast else None)
    rows = {"query": [q for q, _ in pairs], "document": [d for _, d in pairs]}
    train_rows, test_rows = split_rows(rows, 64 if args.fast else 500, args.seed)
    if args.fast:
        train_rows = {k: v[:256] for k, v in train_rows.items()}
    train_dataset, evaluator = retrieval_task(train_rows, test_rows, ("query", "document"), args.fast)
    loss_name = "mnrl"
elif args.data == "stsb":
    train, test = (read_stsb(require(args.data_dir, "shared data folder"), s) for s in ("train", "test"))
    n_train, n_test = (64, 200) if args.fast else (None, None)
    train_dataset = Dataset.from_dict({k: v[:n_train] for k, v in train.items()})
    evaluator = EmbeddingSimilarityEvaluator(test["sentence1"][:n_test], test["sentence2"][:n_test],
                                             test["score"][:n_test], name="sts-test", write_csv=not args.fast)
    loss_name = "cosent"
else:  # any data file or dataset folder tinyst.load_dataset reads
    loaded = load_dataset(str(require(args.data, "dataset")))
    if isinstance(loaded, DatasetDict) and "train" not in loaded:
        raise ValueError(f"{args.data} has splits {list(loaded)}; a 'train' split is needed")
    splits = loaded if isinstance(loaded, DatasetDict) else {"train": loaded}
    full = splits["train"]
    held = next((splits[s] for s in ("test", "validation", "dev") if s in splits), None)
    if held is None:  # hold out 10% of train (at most 500 rows)
        parts = full.train_test_split(test_size=min(500, max(1, len(full) // 10)), seed=args.seed)
        full, held = parts["train"], parts["test"]
    if args.fast:
        full, held = full.select(range(min(256, len(full)))), held.select(range(min(64, len(held))))
    label = next((c for c in ("score", "label") if c in full.column_names), None)
    texts = [c for c in full.column_names if c != label]
    if len(texts) < 2:
        raise ValueError(f"{args.data}: need two text columns, got columns {full.column_names}")
    if label:
        train_dataset = full.select_columns(texts[:2] + [label])
        h = held.to_dict()
        evaluator = EmbeddingSimilarityEvaluator(h[texts[0]], h[texts[1]], h[label], name="held-out",
                                                 write_csv=not args.fast)
        loss_name = "cosent"
    else:
        train_dataset, evaluator = retrieval_task(full.to_dict(), held.to_dict(), tuple(texts[:2]), args.fast)
        loss_name = "mnrl"
print(f"training rows: {len(train_dataset)}  columns: {train_dataset.column_names}  loss: {loss_name}")


# %% [markdown]
# ## 2. The model: a given checkpoint, or a tokenizer and a small BERT trained from nothing
# `train_wordpiece` (tutorials/data.py, 15 lines of `tokenizers`) trains a WordPiece tokenizer as BERT's:
# lowercase + accent stripping, split on whitespace and punctuation, `[CLS] text [SEP]`. The BERT is
# tiny (2 layers of width 128, 2,000 word pieces, 64 tokens per text), so 2 CPU cores train it in
# minutes. (On this data a 2,000-piece vocabulary beat 4,000 and 8,000, and 6 epochs of this model
# beat fewer epochs of wider or deeper ones at the same CPU time.)

# %%
if scratch:
    columns = [c for c in train_dataset.column_names if c not in ("score", "label")]
    texts = [t for c in columns for t in train_dataset[c]]
    tokenizer = train_wordpiece(texts, vocab_size=1000 if args.fast else 2000)
    width = 64 if args.fast else 128
    config = {"model_type": "bert", "vocab_size": tokenizer.get_vocab_size(), "hidden_size": width,
              "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 4 * width,
              "max_position_embeddings": 128, "pad_token_id": 0}
    model = from_config(config, tokenizer, max_seq_length=64, device="cpu")
else:
    model = SentenceTransformer(str(require(args.model, "model")))
print(model)


# %% [markdown]
# ## 3. Before training

# %%
before = evaluator(model)
primary = evaluator.primary_metric
print(f"before training: {primary} = {before[primary]:.4f}")


# %% [markdown]
# ## 4. Train: the ST v3 recipe (loss, arguments, trainer)
# MNRL treats every other document in the batch as a negative for a query, so a batch must not hold
# the same text twice (a "negative" equal to the positive): BatchSamplers.NO_DUPLICATES sees to that.

# %%
loss = MultipleNegativesRankingLoss(model) if loss_name == "mnrl" else CoSENTLoss(model)
steps_per_epoch = -(-len(train_dataset) // batch_size)
training_args = SentenceTransformerTrainingArguments(
    output_dir=out,
    num_train_epochs=epochs,
    per_device_train_batch_size=batch_size,
    learning_rate=lr,
    warmup_ratio=0.1,
    weight_decay=0.01 if scratch else 0.0,
    batch_sampler=BatchSamplers.NO_DUPLICATES if loss_name == "mnrl" else BatchSamplers.BATCH_SAMPLER,
    eval_strategy="steps",
    eval_steps=0.25,  # four evaluations over the run: the metric curve
    logging_steps=max(1, steps_per_epoch // 10),
    save_strategy="no",
    seed=args.seed,
    use_cpu=True,
    disable_tqdm=args.fast,
)
trainer = SentenceTransformerTrainer(model=model, args=training_args, train_dataset=train_dataset, loss=loss,
                                     evaluator=evaluator)
result = trainer.train()


# %% [markdown]
# ## 5. After training: a metrics table, the saved model, and the curve

# %%
after = evaluator(model)
model.save(f"{out}/final")
shown = ("accuracy@1", "accuracy@10", "mrr@10", "ndcg@10", "map@100", "pearson_cosine", "spearman_cosine")
print("\n| metric | before | after |\n|---|---|---|")
for k in [k for k in after if k.endswith(shown)]:
    print(f"| {k} | {before[k]:.4f} | {after[k]:.4f} |")
print(f"\ntrain loss {result.training_loss:.4f}, {result.global_step} steps in {result.metrics['train_runtime']:.0f} s;"
      f" total {time.time() - t_start:.0f} s; model saved to {out}/final")

try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:
    plt = None
if plt is not None:
    history = trainer.state["log_history"]
    losses = [(h["step"], h["loss"]) for h in history if "loss" in h]
    evals = [(0, before[primary])] + [(h["step"], h[f"eval_{primary}"]) for h in history if f"eval_{primary}" in h]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(*zip(*losses), label="training loss")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax2 = ax.twinx()
    ax2.plot(*zip(*evals), "o-", color="tab:orange", label=primary)
    ax2.set_ylabel(primary)
    fig.legend(loc="upper center")
    fig.savefig(f"{out}/curve.png", dpi=120, bbox_inches="tight")
    print(f"curve written to {out}/curve.png")

report(primary, after[primary])
