# %% [markdown]
# # 06 · Large batches on small memory: CachedMultipleNegativesRankingLoss
#
# In-batch-negative losses get better with bigger batches (more negatives per anchor), but memory
# grows with the batch. Gradient accumulation does not help: each micro-batch only sees its own
# negatives. CachedMNRL (GradCache) gives the *same loss and gradient* as MNRL on the full batch
# while running the encoder `mini_batch_size` rows at a time: embed everything without a graph,
# compute the loss and the gradient w.r.t. the embeddings, then re-run each mini-batch with a graph
# and push that cached gradient through it. Cost: a second forward pass; memory: one mini-batch.
# Data: MSRP paraphrase pairs; evaluation: MSRP test paraphrase detection (average precision).

# %%
import torch

from data import model_path, output_dir, parse_args, read_msrp, report, require
from tinyst import Dataset, SentenceTransformer
from tinyst.evaluation import BinaryClassificationEvaluator
from tinyst.losses import CachedMultipleNegativesRankingLoss, MultipleNegativesRankingLoss
from tinyst.trainer import SentenceTransformerTrainer
from tinyst.training_args import BatchSamplers, SentenceTransformerTrainingArguments

args = parse_args("Train with CachedMultipleNegativesRankingLoss at batch 128 (mini-batches of 16).")
data_dir = require(args.data_dir, "shared data folder")
model = SentenceTransformer(model_path(args), device="cpu")
batch_size, mini_batch_size = (32, 8) if args.fast else (128, 16)

# %%
msrp = read_msrp(data_dir, "train")
keep = [i for i, label in enumerate(msrp["label"]) if label == 1][: 64 if args.fast else None]
train_dataset = Dataset.from_dict({"anchor": [msrp["sentence1"][i] for i in keep],
                                   "positive": [msrp["sentence2"][i] for i in keep]})
test = read_msrp(data_dir, "test")
n_eval = 200 if args.fast else None
evaluator = BinaryClassificationEvaluator(test["sentence1"][:n_eval], test["sentence2"][:n_eval],
                                          test["label"][:n_eval], name="msrp-test")
before = evaluator(model)

# %% [markdown]
# ## Same value, same gradient as the plain loss
# One batch of 32 rows through both losses (dropout off so both see the same encoder).

# %%
batch = train_dataset[:32]
features = [model.tokenize(batch["anchor"]), model.tokenize(batch["positive"])]
model.eval()
grads = []
for loss_fn in (MultipleNegativesRankingLoss(model), CachedMultipleNegativesRankingLoss(model, mini_batch_size=8)):
    model.zero_grad()
    value = loss_fn(features, None)
    value.backward()
    grads.append(torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]))
    print(f"{type(loss_fn).__name__}: {value.item():.6f}")
print(f"largest gradient difference: {(grads[0] - grads[1]).abs().max().item():.2e}")
model.zero_grad()

# %% [markdown]
# ## Train at batch 128
# The sampler keeps texts unique within each batch; drop_last avoids a tiny final batch with few negatives.

# %%
loss = CachedMultipleNegativesRankingLoss(model, mini_batch_size=mini_batch_size)
training_args = SentenceTransformerTrainingArguments(
    output_dir=output_dir(args, "06_cached_mnrl"),
    num_train_epochs=1,
    per_device_train_batch_size=batch_size,
    learning_rate=5e-5,
    warmup_ratio=0.1,
    batch_sampler=BatchSamplers.NO_DUPLICATES,
    dataloader_drop_last=True,
    logging_steps=0.2,
    save_strategy="no",
    seed=args.seed,
    use_cpu=True,
    disable_tqdm=args.fast,
)
SentenceTransformerTrainer(model=model, args=training_args, train_dataset=train_dataset, loss=loss).train()

# %%
after = evaluator(model)
key = evaluator.primary_metric
print(f"before training: {key} = {before[key]:.4f}")
report(key, after[key])
