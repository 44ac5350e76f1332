# %% [markdown]
# # 01 · Encode sentences and search a corpus
#
# Load a pretrained model (the shared paraphrase-MiniLM-L3-v2), embed sentences, compare them,
# run a semantic search by hand, then score the search on a real test collection (Cranfield:
# 1,400 aerodynamics abstracts, 225 queries) with InformationRetrievalEvaluator.
# ST equivalent: `from sentence_transformers import SentenceTransformer` - only the import changes.
# sentence-transformers reference: L3 gets Cranfield nDCG@10 0.339 (../shared/data/README.md).

# %%
import torch

from data import model_path, parse_args, read_cranfield, report, require
from tinyst import SentenceTransformer
from tinyst.evaluation import InformationRetrievalEvaluator

args = parse_args("Encode sentences, search a corpus, and score retrieval on Cranfield.")
model = SentenceTransformer(model_path(args), device="cpu")
print(model)

# %% [markdown]
# ## Encode and compare
# `encode` returns one row per sentence (numpy by default); `model.similarity` is the cosine
# similarity matrix here, because the model's `similarity_fn_name` is "cosine".

# %%
sentences = ["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium."]
embeddings = model.encode(sentences)  # (3, 384)
print(embeddings.shape)
print(model.similarity(embeddings, embeddings))  # (3, 3): the two weather sentences are closest

# %% [markdown]
# ## Semantic search by hand
# Embed the corpus once, embed each query, take the top-k cosine scores. This is all
# `sentence_transformers.util.semantic_search` does (it also chunks a large corpus).

# %%
queries, corpus, relevant = read_cranfield(require(args.data_dir, "shared data folder"))
if args.fast:  # 20 queries against their relevant documents plus 200 others
    queries = dict(list(queries.items())[:20])
    keep = {d for q in queries for d in relevant.get(q, ())} | set(list(corpus)[:200])
    corpus = {d: t for d, t in corpus.items() if d in keep}
doc_ids = list(corpus)
doc_emb = model.encode([corpus[d] for d in doc_ids], convert_to_tensor=True, batch_size=64)  # (N, 384)
query = queries["1"]
scores = model.similarity(model.encode([query], convert_to_tensor=True), doc_emb)[0]  # (N,)
top = torch.topk(scores, k=3)
print(f"query: {query}")
for score, i in zip(top.values.tolist(), top.indices.tolist()):
    mark = "relevant" if doc_ids[i] in relevant.get("1", ()) else ""
    print(f"  {score:.3f}  doc {doc_ids[i]:>4}  {mark:8}  {corpus[doc_ids[i]][:70]}...")

# %% [markdown]
# ## Score the search: InformationRetrievalEvaluator
# Accuracy/precision/recall@k, MRR@10, nDCG@10 and MAP@100 over all queries; the primary metric is
# cosine nDCG@10.

# %%
evaluator = InformationRetrievalEvaluator(queries, corpus, relevant, name="cranfield", write_csv=False)
results = evaluator(model)
for key in ("cranfield_cosine_accuracy@10", "cranfield_cosine_mrr@10", "cranfield_cosine_map@100"):
    print(f"{key}: {results[key]:.4f}")
report(evaluator.primary_metric, results[evaluator.primary_metric])
