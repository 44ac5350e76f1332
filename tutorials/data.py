"""Shared helpers of the tutorials: where data and models live, command-line flags, readers for the
shared real datasets, and a training set every Python installation carries (stdlib docstrings).

Paths: `--data-dir` / `--models-dir` flags, else TINYST_DATA / TINYST_MODELS, else ../shared/data and
../shared/models beside the repository (what `.ci/run` uses). Missing data ends a tutorial with a
clear message and exit code 0, so a fresh clone without the shared folders still runs every script.
Readers mirror tests/shared_data.py (copied so tutorials run standalone); the from-scratch tutorials
share `train_wordpiece` and `retrieval_qrels`.
Not included: downloads. Nothing here touches the network.
"""
import argparse
import ast
import os
import re
import sys
import sysconfig
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

REPO = Path(__file__).resolve().parents[1]


def parse_args(description: str, **extra) -> argparse.Namespace:
    """The flags every tutorial shares (+ `extra`: name -> (type, default, help)). Unknown flags are
    ignored, so the script also runs as a notebook (Jupyter passes its own -f flag)."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--fast", action="store_true", help="tiny sizes, for the tests (seconds, not minutes)")
    p.add_argument("--data-dir", default=os.environ.get("TINYST_DATA", str(REPO.parent / "shared" / "data")))
    p.add_argument("--models-dir", default=os.environ.get("TINYST_MODELS", str(REPO.parent / "shared" / "models")))
    p.add_argument("--model", default=None, help="a model folder (default: paraphrase-MiniLM-L3-v2 in --models-dir)")
    p.add_argument("--output-dir", default=None, help="where checkpoints and the final model go")
    p.add_argument("--seed", type=int, default=0)
    for name, (kind, default, help_) in extra.items():
        p.add_argument(f"--{name.replace('_', '-')}", type=kind, default=default, help=help_)
    args, _ = p.parse_known_args()
    return args


def output_dir(args, name: str) -> str:
    return args.output_dir or str(REPO / "output" / name)


def require(path, what: str) -> Path:
    """Return `path` if it exists; otherwise say what is missing and how to point at it, and exit 0."""
    path = Path(path)
    if not path.exists():
        print(f"{what} not found at {path}: pass its folder with the flag shown in --help, or set "
              f"TINYST_DATA / TINYST_MODELS (the shared folders). Nothing to do, exiting.")
        sys.exit(0)
    return path


def model_path(args, name: str = "paraphrase-MiniLM-L3-v2") -> str:
    return str(require(args.model or Path(args.models_dir) / name, f"model {args.model or name}"))


def report(key: str, value: float) -> None:
    """The last line every tutorial prints: its evaluator's primary figure (the tests read it)."""
    print(f"{key}: {value:.4f}")


# -- the shared real datasets (see ../shared/data/README.md) -------------------------------------
STSB = {"train": "sts-train.csv", "validation": "sts-dev.csv", "test": "sts-test.csv"}
SICK = {"train": "SICK_train.txt", "validation": "SICK_trial.txt", "test": "SICK_test_annotated.txt"}
MSRP = {"train": "msr-para-train.tsv", "validation": "msr-para-val.tsv", "test": "msr-para-test.tsv"}


def _tsv(path: Path, header: bool) -> list:
    with open(require(path, "dataset file"), encoding="utf-8-sig", newline="") as f:
        rows = [line.rstrip("\r\n").split("\t") for line in f if line.strip()]
    return rows[1:] if header else rows


def read_stsb(data_dir, split: str) -> dict:
    """STS Benchmark: {"sentence1", "sentence2", "score" in [0, 1]} (gold 0-5 divided by 5).
    subtle: some rows carry 2 extra trailing columns, so columns are read by index."""
    rows = _tsv(Path(data_dir) / "stsb" / STSB[split], header=False)
    return {"sentence1": [r[5] for r in rows], "sentence2": [r[6] for r in rows],
            "score": [float(r[4]) / 5 for r in rows]}


def read_sick(data_dir, split: str) -> dict:
    """SICK: {"sentence1", "sentence2", "score" (1-5 relatedness), "label" (ENTAILMENT/NEUTRAL/CONTRADICTION)}."""
    rows = _tsv(Path(data_dir) / "sick" / SICK[split], header=True)
    return {"sentence1": [r[1] for r in rows], "sentence2": [r[2] for r in rows],
            "score": [float(r[3]) for r in rows], "label": [r[4] for r in rows]}


def read_sick_triplets(data_dir, splits=("train", "validation", "test")) -> dict:
    """(anchor, positive, negative): each sentence_A with an ENTAILMENT and a CONTRADICTION partner,
    its first such partners in file order. A small stand-in for AllNLI's triplet subset."""
    pos, neg = {}, {}
    for split in splits:
        d = read_sick(data_dir, split)
        for a, b, label in zip(d["sentence1"], d["sentence2"], d["label"]):
            target = {"ENTAILMENT": pos, "CONTRADICTION": neg}.get(label)
            if target is not None:
                target.setdefault(a, b)
    anchors = [a for a in pos if a in neg]
    return {"anchor": anchors, "positive": [pos[a] for a in anchors], "negative": [neg[a] for a in anchors]}


def read_msrp(data_dir, split: str) -> dict:
    """MSR paraphrase corpus: {"sentence1", "sentence2", "label" (1 paraphrase / 0 not)}."""
    rows = _tsv(Path(data_dir) / "msrp" / MSRP[split], header=True)
    return {"sentence1": [r[3] for r in rows], "sentence2": [r[4] for r in rows], "label": [int(r[0]) for r in rows]}


def _records(path: Path) -> list:
    """Cranfield's `.I n` records with `.T/.A/.B/.W` fields -> [{"I": n, "T": ..., "W": ...}]."""
    records, field = [], None
    for line in require(path, "Cranfield file").read_text(encoding="latin-1").splitlines():
        if line.startswith(".I"):
            records.append({"I": line[2:].strip()})
            field = None
        elif line[:2] in (".T", ".A", ".B", ".W") and not line[2:].strip():
            field = line[1]
            records[-1][field] = ""
        elif field is not None:
            records[-1][field] += " " + line.strip()
    return [{k: " ".join(v.split()) for k, v in r.items()} for r in records]


def read_cranfield(data_dir) -> tuple:
    """(queries {qid: text}, corpus {doc_id: text}, relevant_docs {qid: set(doc_id)}); queries are
    numbered 1..225 by position (cran.qry's own .I ids have gaps); relevance 1-4 counts, -1 does not."""
    folder = Path(data_dir) / "cranfield"
    corpus = {r["I"]: r.get("W") or r.get("T", "") for r in _records(folder / "cran.all.1400")}
    queries = {str(i + 1): r["W"] for i, r in enumerate(_records(folder / "cran.qry"))}
    relevant = {}
    for line in (folder / "cranqrel").read_text(encoding="latin-1").splitlines():
        if line.strip():
            qid, did, code = line.split()[:3]
            if 1 <= int(code) <= 4:
                relevant.setdefault(qid, set()).add(did)
    return queries, corpus, relevant


# -- a training set every Python installation has: the standard library's docstrings -----------
SKIP_DIRS = {"test", "tests", "site-packages", "dist-packages", "__pycache__"}
FIRST_SENTENCE = re.compile(r"(?<=[.!?])\s")


def _pair(node, path: Path, root: Path):
    """(summary, document) for one documented module/class/function, or None if too short.
    query = the docstring's first sentence; document = signature + the rest of the docstring."""
    doc = ast.get_docstring(node)
    if not doc:
        return None
    para, _, after = doc.strip().partition("\n\n")
    head = FIRST_SENTENCE.split(" ".join(para.split()), maxsplit=1)
    summary, rest = head[0], " ".join(((head[1] if len(head) > 1 else "") + " " + after).split())
    if len(summary.split()) < 3 or len(rest.split()) < 3:
        return None
    if isinstance(node, ast.Module):
        sig = "module " + ".".join(path.relative_to(root).with_suffix("").parts)
    elif isinstance(node, ast.ClassDef):
        sig = f"class {node.name}"
    else:
        sig = f"def {node.name}({ast.unparse(node.args)})"
    return summary, f"{sig}: {rest}"


def stdlib_pairs(max_files: int | None = None) -> list:
    """[(query, document)] from the .py files of this Python's standard library, parsed with `ast`
    (nothing is imported or executed), in a fixed order; repeated queries or documents are dropped."""
    root = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(p for p in root.rglob("*.py") if not set(p.relative_to(root).parts[:-1]) & SKIP_DIRS)
    kinds = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    pairs, seen = [], set()
    for path in files[:max_files]:
        try:
            tree = ast.parse(path.read_bytes())
        except (SyntaxError, ValueError):  # a few files are deliberately broken (bad-syntax samples)
            continue
        for node in ast.walk(tree):
            pair = _pair(node, path, root) if isinstance(node, kinds) else None
            if pair and pair[0] not in seen and pair[1] not in seen:
                seen.update(pair)
                pairs.append(pair)
    if len(pairs) < 100:
        raise FileNotFoundError(f"found only {len(pairs)} documented definitions under {root}: this Python "
                                "ships without its standard library sources (.py files)")
    return pairs


# -- building blocks of the from-scratch tutorials --------------------------------------------
def train_wordpiece(texts, vocab_size: int) -> Tokenizer:
    """A BERT-style WordPiece tokenizer trained on `texts` (lowercased, accents stripped, split on
    whitespace and punctuation; "[CLS] text [SEP]"), with "[PAD]" as id 0."""
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]  # [PAD] first: id 0 = BERT's pad_token_id
    tok.train_from_iterator(texts, trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=specials,
                                                             show_progress=False))
    # subtle: the trainer numbers the pieces in hash-map order, which changes from run to run; renumber
    # them (specials, then alphabetical) so a seed always gives the same model
    pieces = specials + sorted(set(tok.get_vocab()) - set(specials))
    tok.model = models.WordPiece({p: i for i, p in enumerate(pieces)}, unk_token="[UNK]")
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
                                                       special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    return tok


def retrieval_qrels(queries: list, documents: list, other_documents=()) -> tuple:
    """InformationRetrievalEvaluator inputs for held-out pairs: query i's relevant document is
    documents[i], searched among all documents (other_documents too, e.g. the training ones)."""
    docs = list(dict.fromkeys([*documents, *other_documents]))  # unique, in order
    corpus = {f"d{i}": d for i, d in enumerate(docs)}
    doc_id = {d: cid for cid, d in corpus.items()}
    return ({f"q{i}": q for i, q in enumerate(queries)}, corpus,
            {f"q{i}": {doc_id[d]} for i, d in enumerate(documents)})
