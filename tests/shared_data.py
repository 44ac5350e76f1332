"""Readers for the shared real datasets (../shared/data, see its README.md), for tests and tutorials.

Each reader takes the data folder (the `data_dir` fixture) and returns plain Python lists/dicts.
Quirks handled: STSb rows with extra trailing columns (columns read by index), SICK/MSRP BOMs
(utf-8-sig), CRLF line ends, Cranfield's .I/.T/.A/.B/.W records with queries numbered by position.
"""
from pathlib import Path

STSB_FILES = {"train": "sts-train.csv", "validation": "sts-dev.csv", "dev": "sts-dev.csv", "test": "sts-test.csv"}
SICK_FILES = {"train": "SICK_train.txt", "validation": "SICK_trial.txt", "trial": "SICK_trial.txt",
              "test": "SICK_test_annotated.txt"}
MSRP_FILES = {"train": "msr-para-train.tsv", "validation": "msr-para-val.tsv", "test": "msr-para-test.tsv"}


def _tsv_rows(path: Path, skip_header: bool):
    with open(path, encoding="utf-8-sig", newline="") as f:
        rows = [line.rstrip("\r\n").split("\t") for line in f if line.strip()]
    return rows[1:] if skip_header else rows


def read_stsb(data_dir, split="test") -> dict:
    """{"sentence1", "sentence2", "score"} with the 0-5 gold score (divide by 5 for [0, 1])."""
    rows = _tsv_rows(Path(data_dir) / "stsb" / STSB_FILES[split], skip_header=False)
    return {"sentence1": [r[5] for r in rows], "sentence2": [r[6] for r in rows], "score": [float(r[4]) for r in rows]}


def read_sick(data_dir, split="test") -> dict:
    """{"sentence1", "sentence2", "score" (1-5 relatedness), "label" (ENTAILMENT/NEUTRAL/CONTRADICTION)}."""
    rows = _tsv_rows(Path(data_dir) / "sick" / SICK_FILES[split], skip_header=True)
    return {"sentence1": [r[1] for r in rows], "sentence2": [r[2] for r in rows],
            "score": [float(r[3]) for r in rows], "label": [r[4] for r in rows]}


def read_sick_triplets(data_dir, splits=("train", "trial", "test")) -> dict:
    """(anchor, positive, negative): for each sentence_A with both an ENTAILMENT and a CONTRADICTION
    partner, its first such partners (in file order, over `splits`)."""
    pos, neg = {}, {}
    for split in splits:
        d = read_sick(data_dir, split)
        for a, b, label in zip(d["sentence1"], d["sentence2"], d["label"]):
            target = pos if label == "ENTAILMENT" else neg if label == "CONTRADICTION" else None
            if target is not None:
                target.setdefault(a, b)
    anchors = [a for a in pos if a in neg]
    return {"anchor": anchors, "positive": [pos[a] for a in anchors], "negative": [neg[a] for a in anchors]}


def read_msrp(data_dir, split="test") -> dict:
    """{"id1", "id2", "sentence1", "sentence2", "label" (1 paraphrase / 0 not)}."""
    rows = _tsv_rows(Path(data_dir) / "msrp" / MSRP_FILES[split], skip_header=True)
    return {"id1": [r[1] for r in rows], "id2": [r[2] for r in rows], "sentence1": [r[3] for r in rows],
            "sentence2": [r[4] for r in rows], "label": [int(r[0]) for r in rows]}


def _records(path: Path) -> list[dict]:
    """Cranfield's `.I n` records with `.T/.A/.B/.W` fields -> [{"I": n, "T": ..., "W": ...}]."""
    records, field = [], None
    for line in path.read_text(encoding="latin-1").splitlines():
        if line.startswith(".I"):
            records.append({"I": line[2:].strip()})
            field = None
        elif line[:2] in (".T", ".A", ".B", ".W") and line[2:].strip() == "":
            field = line[1]
            records[-1][field] = ""
        elif field is not None:
            records[-1][field] += " " + line.strip()
    return [{k: " ".join(v.split()) for k, v in r.items()} for r in records]


def read_cranfield(data_dir, min_relevance=1, max_relevance=4) -> dict:
    """{"corpus": {doc_id: text}, "queries": {query_id: text}, "relevant_docs": {query_id: set(doc_id)},
    "relevance": {query_id: {doc_id: code}}}. Ids are strings; queries are numbered 1..225 by position
    (the .I numbers in cran.qry are gappy); a document's text is its .W (abstract, title included),
    else its title. Relevance codes 1-4 count as relevant, -1 does not."""
    folder = Path(data_dir) / "cranfield"
    corpus = {r["I"]: r.get("W") or r.get("T", "") for r in _records(folder / "cran.all.1400")}
    queries = {str(i + 1): r["W"] for i, r in enumerate(_records(folder / "cran.qry"))}
    relevance, relevant = {}, {}
    for line in (folder / "cranqrel").read_text(encoding="latin-1").splitlines():
        if line.strip():
            qid, did, code = line.split()[:3]
            relevance.setdefault(qid, {})[did] = int(code)
            if min_relevance <= int(code) <= max_relevance:
                relevant.setdefault(qid, set()).add(did)
    return {"corpus": corpus, "queries": queries, "relevant_docs": relevant, "relevance": relevance}
