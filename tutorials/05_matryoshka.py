# %% [markdown]
# # 05 · Matryoshka embeddings: good at every prefix length
#
# MatryoshkaLoss applies an inner loss (here CoSENTLoss) to the first 384, 256, 128, 64 and 32
# dimensions of each embedding and sums the results, so a truncated embedding stays useful: store
# 64 floats instead of 384 and lose little. The model is run once per batch; only the slices differ.
# Evaluation: STSb test Spearman at each dimension (`truncate_dim`), before and after.

# %%
from data import model_path, output_dir, parse_args, read_stsb, report, require
from tinyst import Dataset, SentenceTransformer
from tinyst.evaluation import EmbeddingSimilarityEvaluator, SequentialEvaluator
from tinyst.losses import CoSENTLoss, MatryoshkaLoss
from tinyst.trainer import SentenceTransformerTrainer
from tinyst.training_args import SentenceTransformerTrainingArguments

args = parse_args("Finetune with MatryoshkaLoss on STSb and score each truncated embedding size.")
data_dir = require(args.data_dir, "shared data folder")
model = SentenceTransformer(model_path(args), device="cpu")

# %%
n_train, n_eval = (64, 200) if args.fast else (None, None)
train, test = read_stsb(data_dir, "train"), read_stsb(data_dir, "test")
train_dataset = Dataset.from_dict({k: v[:n_train] for k, v in train.items()})
dims = [d for d in (768, 512, 384, 256, 128, 64, 32) if d <= model.get_sentence_embedding_dimension()]
evaluator = SequentialEvaluator([
    EmbeddingSimilarityEvaluator(test["sentence1"][:n_eval], test["sentence2"][:n_eval], test["score"][:n_eval],
                                 name=f"sts-test-{d}", truncate_dim=d)
    for d in dims
])
before = evaluator(model)

# %% [markdown]
# ## The loss: one inner loss, several slices (weights default to 1 each)

# %%
loss = MatryoshkaLoss(model, CoSENTLoss(model), matryoshka_dims=dims)
training_args = SentenceTransformerTrainingArguments(
    output_dir=output_dir(args, "05_matryoshka"),
    num_train_epochs=1,
    per_device_train_batch_size=16,
    learning_rate=2e-5,
    warmup_ratio=0.1,
    logging_steps=0.1,
    save_strategy="no",
    seed=args.seed,
    use_cpu=True,
    disable_tqdm=args.fast,
)
SentenceTransformerTrainer(model=model, args=training_args, train_dataset=train_dataset, loss=loss).train()

# %%
after = evaluator(model)
print("| dim | before | after |\n|---|---|---|")
for d in dims:
    key = f"sts-test-{d}_spearman_cosine"
    print(f"| {d} | {before[key]:.4f} | {after[key]:.4f} |")
report(f"sts-test-{dims[-2]}_spearman_cosine", after[f"sts-test-{dims[-2]}_spearman_cosine"])
