# %% [markdown]
# # 03 · NLI triplets: MultipleNegativesRankingLoss with NO_DUPLICATES batches
#
# The ST v3 blog trains on AllNLI's (anchor, positive, negative) triplets: a premise, a hypothesis it
# entails, and one it contradicts. Here SICK's triplets stand in for AllNLI (415 anchors with both an
# entailed and a contradicting partner); `--data <folder>` runs the same code on a local copy of the
# hub dataset `sentence-transformers/all-nli` (folder layout `triplet/train-*.parquet`, read with
# tinyst.load_dataset, as `datasets.load_dataset` would). TripletEvaluator reports how often
# cos(anchor, positive) > cos(anchor, negative) on held-out triplets, before and after.

# %%
from data import model_path, output_dir, parse_args, read_sick_triplets, report, require
from tinyst import Dataset, SentenceTransformer, load_dataset
from tinyst.evaluation import TripletEvaluator
from tinyst.losses import MultipleNegativesRankingLoss
from tinyst.trainer import SentenceTransformerTrainer
from tinyst.training_args import BatchSamplers, SentenceTransformerTrainingArguments

args = parse_args("Finetune on (anchor, positive, negative) triplets with MNRL and score with TripletEvaluator.",
                  data=(str, None, "a local all-nli folder in hub layout (default: SICK triplets)"),
                  max_rows=(int, 10_000, "training rows taken from --data (AllNLI has 557k)"))
model = SentenceTransformer(model_path(args), device="cpu")

# %% [markdown]
# ## Data: three text columns, in the order the loss reads them

# %%
if args.data:
    triplets = load_dataset(str(require(args.data, "all-nli folder")), "triplet")
    n_train, n_eval = (64, 100) if args.fast else (args.max_rows, 1000)
    train_dataset = triplets["train"].select(range(min(n_train, len(triplets["train"]))))
    held = triplets["dev"].select(range(min(n_eval, len(triplets["dev"]))))
    name = "all-nli-dev"
else:
    rows = Dataset.from_dict(read_sick_triplets(require(args.data_dir, "shared data folder")))
    parts = rows.train_test_split(test_size=150, seed=args.seed)  # split by anchor: no anchor in both
    train_dataset, held = parts["train"], parts["test"]
    if args.fast:
        train_dataset, held = train_dataset.select(range(64)), held.select(range(50))
    name = "sick-triplets"
print(train_dataset)
evaluator = TripletEvaluator(held["anchor"], held["positive"], held["negative"], name=name)
before = evaluator(model)
print(f"before training: {evaluator.primary_metric} = {before[evaluator.primary_metric]:.4f}")

# %% [markdown]
# ## Loss and batches
# For each anchor MNRL scores its positive against every positive *and* negative in the batch, so
# the batch's other rows are free negatives. A text appearing twice in one batch would be a
# "negative" identical to a positive: BatchSamplers.NO_DUPLICATES keeps every text unique per batch.

# %%
loss = MultipleNegativesRankingLoss(model)
training_args = SentenceTransformerTrainingArguments(
    output_dir=output_dir(args, "03_nli_triplets"),
    num_train_epochs=1,
    per_device_train_batch_size=16,
    learning_rate=2e-5,
    warmup_ratio=0.1,
    batch_sampler=BatchSamplers.NO_DUPLICATES,
    eval_strategy="steps",
    eval_steps=0.5,
    logging_steps=0.1,
    save_strategy="no",
    seed=args.seed,
    use_cpu=True,
    disable_tqdm=args.fast,
)
trainer = SentenceTransformerTrainer(model=model, args=training_args, train_dataset=train_dataset, loss=loss,
                                     evaluator=evaluator)
trainer.train()

# %%
after = evaluator(model)
report(evaluator.primary_metric, after[evaluator.primary_metric])
