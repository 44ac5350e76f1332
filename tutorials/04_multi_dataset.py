# %% [markdown]
# # 04 · Several datasets, one loss each
#
# ST v3 trains on a dict of datasets with a dict of losses under the same keys: every batch comes
# from one dataset and goes to that dataset's loss. Here STSb's scored pairs train CoSENTLoss while
# MSRP's paraphrase pairs (label 1 only) train MultipleNegativesRankingLoss. Batches of the two are
# interleaved at random in proportion to their sizes (MultiDatasetBatchSamplers.PROPORTIONAL).
# A SequentialEvaluator runs an evaluator per task; its `sequential_score` is their mean here.

# %%
from data import model_path, output_dir, parse_args, read_msrp, read_stsb, report, require
from tinyst import Dataset, SentenceTransformer
from tinyst.evaluation import BinaryClassificationEvaluator, EmbeddingSimilarityEvaluator, SequentialEvaluator
from tinyst.losses import CoSENTLoss, MultipleNegativesRankingLoss
from tinyst.trainer import SentenceTransformerTrainer
from tinyst.training_args import MultiDatasetBatchSamplers, SentenceTransformerTrainingArguments

args = parse_args("Train on STSb (CoSENT) and MSRP paraphrases (MNRL) at once, with a loss per dataset.")
data_dir = require(args.data_dir, "shared data folder")
model = SentenceTransformer(model_path(args), device="cpu")

# %% [markdown]
# ## A dict of datasets, and a dict of losses with the same keys

# %%
n_train, n_eval = (48, 150) if args.fast else (None, None)
stsb, msrp = read_stsb(data_dir, "train"), read_msrp(data_dir, "train")
paraphrases = [i for i, label in enumerate(msrp["label"]) if label == 1][:n_train]
train_dataset = {
    "stsb": Dataset.from_dict({k: v[:n_train] for k, v in stsb.items()}),
    "msrp": Dataset.from_dict({"anchor": [msrp["sentence1"][i] for i in paraphrases],
                               "positive": [msrp["sentence2"][i] for i in paraphrases]}),
}
losses = {"stsb": CoSENTLoss(model), "msrp": MultipleNegativesRankingLoss(model)}
for key, ds in train_dataset.items():
    print(key, ds, type(losses[key]).__name__)

# %% [markdown]
# ## One evaluator per task

# %%
sts_test, msrp_test = read_stsb(data_dir, "test"), read_msrp(data_dir, "test")
evaluator = SequentialEvaluator(
    [EmbeddingSimilarityEvaluator(sts_test["sentence1"][:n_eval], sts_test["sentence2"][:n_eval],
                                  sts_test["score"][:n_eval], name="sts-test"),
     BinaryClassificationEvaluator(msrp_test["sentence1"][:n_eval], msrp_test["sentence2"][:n_eval],
                                   msrp_test["label"][:n_eval], name="msrp-test")],
    main_score_function=lambda scores: sum(scores) / len(scores),
)
before = evaluator(model)

# %%
training_args = SentenceTransformerTrainingArguments(
    output_dir=output_dir(args, "04_multi_dataset"),
    num_train_epochs=1,
    per_device_train_batch_size=16,
    learning_rate=2e-5,
    warmup_ratio=0.1,
    multi_dataset_batch_sampler=MultiDatasetBatchSamplers.PROPORTIONAL,
    logging_steps=0.1,
    save_strategy="no",
    seed=args.seed,
    use_cpu=True,
    disable_tqdm=args.fast,
)
trainer = SentenceTransformerTrainer(model=model, args=training_args, train_dataset=train_dataset, loss=losses,
                                     evaluator=evaluator)
trainer.train()

# %%
after = evaluator(model)
for key in ("sts-test_spearman_cosine", "msrp-test_cosine_ap"):
    print(f"{key}: {before[key]:.4f} -> {after[key]:.4f}")
report("sequential_score", after["sequential_score"])
