# %% [markdown]
# # 05 · Matryoshka embeddings: useful at every prefix length
#
# MatryoshkaLoss applies an inner loss to the first 128, 64, 32, 16 and 8 dimensions of each
# embedding and sums the results, so the leading dimensions carry the most information: keep 16
# floats instead of 128 and still search well. The encoder runs once per batch; only the slices differ.
# The effect is clearest when training from scratch, so this tutorial reuses the main job's offline
# setup (stdlib docstrings, a WordPiece tokenizer, a small random BERT) and trains it twice, with
# plain MultipleNegativesRankingLoss and with MatryoshkaLoss around it, then scores held-out
# retrieval at each `truncate_dim`. (On an already trained model such as paraphrase-MiniLM-L3-v2, one
# epoch of STSb barely moves the small prefixes either way.)

# %%
import torch

from data import output_dir, parse_args, report, retrieval_qrels, stdlib_pairs, train_wordpiece
from tinyst import Dataset
from tinyst.evaluation import InformationRetrievalEvaluator
from tinyst.losses import MatryoshkaLoss, MultipleNegativesRankingLoss
from tinyst.sentence_transformer import from_config
from tinyst.trainer import SentenceTransformerTrainer
from tinyst.training_args import BatchSamplers, SentenceTransformerTrainingArguments

args = parse_args("Train a small model from scratch with and without MatryoshkaLoss; score each truncated size.")
width = 64 if args.fast else 128
dims = [d for d in (128, 64, 32, 16, 8) if d <= width]

# %% [markdown]
# ## Data, tokenizer and evaluators (one per embedding size)

# %%
pairs = stdlib_pairs(max_files=120 if args.fast else None)
rows = Dataset.from_dict({"query": [q for q, _ in pairs], "document": [d for _, d in pairs]})
parts = rows.train_test_split(test_size=64 if args.fast else 500, seed=args.seed)
train_dataset, held = parts["train"], parts["test"]
if args.fast:
    train_dataset = train_dataset.select(range(256))
queries, corpus, relevant = retrieval_qrels(held["query"], held["document"], train_dataset["document"])
evaluators = {d: InformationRetrievalEvaluator(queries, corpus, relevant, name=f"held-out-{d}", truncate_dim=d,
                                               batch_size=64, write_csv=False) for d in dims}
tokenizer = train_wordpiece(train_dataset["query"] + train_dataset["document"], 1000 if args.fast else 2000)
config = {"model_type": "bert", "vocab_size": tokenizer.get_vocab_size(), "hidden_size": width,
          "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 4 * width,
          "max_position_embeddings": 128}


# %% [markdown]
# ## The same recipe twice: plain MNRL, then MatryoshkaLoss(MNRL)
# Same seed, so both start from the same random weights and see the same batches.

# %%
def train(matryoshka: bool) -> dict:
    torch.manual_seed(args.seed)
    model = from_config(config, tokenizer, max_seq_length=64, device="cpu")
    loss = MultipleNegativesRankingLoss(model)
    if matryoshka:
        loss = MatryoshkaLoss(model, loss, matryoshka_dims=dims)  # weights default to 1 per size
    training_args = SentenceTransformerTrainingArguments(
        output_dir=output_dir(args, "05_matryoshka"), num_train_epochs=6, per_device_train_batch_size=64,
        learning_rate=2e-3, warmup_ratio=0.1, weight_decay=0.01, batch_sampler=BatchSamplers.NO_DUPLICATES,
        logging_steps=0.1, save_strategy="no", seed=args.seed, use_cpu=True, disable_tqdm=args.fast)
    SentenceTransformerTrainer(model=model, args=training_args, train_dataset=train_dataset, loss=loss).train()
    return {d: ev(model)[ev.primary_metric] for d, ev in evaluators.items()}


plain, nested = train(matryoshka=False), train(matryoshka=True)

# %%
print("| dim | MNRL nDCG@10 | Matryoshka nDCG@10 |\n|---|---|---|")
for d in dims:
    print(f"| {d} | {plain[d]:.4f} | {nested[d]:.4f} |")
print(f"16 dimensions: plain MNRL {plain[16]:.4f}, Matryoshka (below) {nested[16]:.4f}")
report("held-out-16_cosine_ndcg@10", nested[16])
