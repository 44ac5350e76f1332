"""Evaluators for multilingual / distillation training: does a translation retrieve its source
(TranslationEvaluator), and how far are student embeddings from the teacher's (MSEEvaluator,
MSEEvaluatorFromDataFrame; reported as negative_mse = -100 * mean squared error, so larger is better).

Mirrors `sentence_transformers/evaluation/{TranslationEvaluator,MSEEvaluator,
MSEEvaluatorFromDataFrame}.py` v3.4: keys, primary metrics and CSV names/headers as there
(`translation_evaluation[_{name}]`, `mse_evaluation_{name}` (always an underscore), and
`mse_evaluation[_{name}]` for the data-frame variant).
Not included: printing wrong matches (tinyst does not print; they are kept in `wrong_matches`).
"""
import numpy as np
import torch

from tinyst import util
from tinyst.evaluation.base import SentenceEvaluator, check_texts, csv_name, embed


class TranslationEvaluator(SentenceEvaluator):
    """src2trg accuracy: share of sources whose most cosine-similar target is their own
    translation (and trg2src the other way round); primary `mean_accuracy`."""

    def __init__(self, source_sentences, target_sentences, show_progress_bar=False, batch_size=16, name="",
                 print_wrong_matches=False, write_csv=True, truncate_dim=None):
        super().__init__()
        check_texts(source_sentences=source_sentences, target_sentences=target_sentences)
        self.source_sentences, self.target_sentences = list(source_sentences), list(target_sentences)
        self.show_progress_bar, self.batch_size, self.name = show_progress_bar, batch_size, name
        self.print_wrong_matches, self.write_csv, self.truncate_dim = print_wrong_matches, write_csv, truncate_dim
        self.csv_file = csv_name("translation_evaluation", name)
        self.csv_headers = ["epoch", "steps", "src2trg", "trg2src"]
        self.primary_metric = "mean_accuracy"
        self.wrong_matches = []  # (source index, predicted target index) of the last call

    def __call__(self, model, output_path=None, epoch=-1, steps=-1) -> dict[str, float]:
        kw = dict(batch_size=self.batch_size, show_progress_bar=self.show_progress_bar, convert_to_tensor=True)
        src = embed(model, self.source_sentences, self.truncate_dim, **kw)  # (N, D)
        trg = embed(model, self.target_sentences, self.truncate_dim, **kw)  # (N, D)
        sims = util.cos_sim(src, trg).cpu().numpy()  # (N, N)
        gold = np.arange(len(sims))
        src2trg, trg2src = sims.argmax(axis=1), sims.argmax(axis=0)  # first index wins ties
        self.wrong_matches = [(int(i), int(j)) for i, j in zip(gold, src2trg) if i != j]
        acc_s2t, acc_t2s = float((src2trg == gold).mean()), float((trg2src == gold).mean())
        metrics = {"src2trg_accuracy": acc_s2t, "trg2src_accuracy": acc_t2s, "mean_accuracy": (acc_s2t + acc_t2s) / 2}
        return self.finish(model, metrics, output_path, epoch, steps, [acc_s2t, acc_t2s])


def _mse100(teacher: np.ndarray, student: np.ndarray) -> float:
    if teacher.shape != student.shape:
        raise ValueError(f"teacher embeddings {teacher.shape} and student embeddings {student.shape} differ in shape")
    return float(((teacher - student) ** 2).mean() * 100)


class MSEEvaluator(SentenceEvaluator):
    """negative_mse between the teacher's embeddings of `source_sentences` (computed once, here)
    and the evaluated model's embeddings of `target_sentences`."""

    def __init__(self, source_sentences, target_sentences, teacher_model=None, show_progress_bar=False,
                 batch_size=32, name="", write_csv=True, truncate_dim=None):
        super().__init__()
        check_texts(source_sentences=source_sentences, target_sentences=target_sentences)
        if teacher_model is None:
            raise ValueError("MSEEvaluator needs a teacher_model to embed the source sentences")
        self.truncate_dim = truncate_dim
        self.source_embeddings = embed(teacher_model, source_sentences, truncate_dim, batch_size=batch_size,
                                       show_progress_bar=show_progress_bar, convert_to_numpy=True)  # (N, D)
        self.target_sentences = list(target_sentences)
        self.show_progress_bar, self.batch_size = show_progress_bar, batch_size
        self.name, self.write_csv = name, write_csv
        self.csv_file = f"mse_evaluation_{name}_results.csv"
        self.csv_headers = ["epoch", "steps", "MSE"]
        self.primary_metric = "negative_mse"

    def __call__(self, model, output_path=None, epoch=-1, steps=-1) -> dict[str, float]:
        student = embed(model, self.target_sentences, self.truncate_dim, batch_size=self.batch_size,
                        show_progress_bar=self.show_progress_bar, convert_to_numpy=True)  # (N, D)
        mse = _mse100(self.source_embeddings, student)
        return self.finish(model, {"negative_mse": -mse}, output_path, epoch, steps, [mse])

    @property
    def description(self) -> str:
        return "Knowledge Distillation"


class MSEEvaluatorFromDataFrame(SentenceEvaluator):
    """negative_mse averaged over language pairs: `dataframe` is a list of rows {lang: text};
    for each (src, trg) in `combinations`, the teacher embeds row[src] and the model row[trg]
    (rows where either text is blank are skipped)."""

    def __init__(self, dataframe, teacher_model, combinations, batch_size=8, name="", write_csv=True,
                 truncate_dim=None):
        super().__init__()
        if hasattr(dataframe, "to_dict"):  # a pandas DataFrame, if the caller has one
            dataframe = dataframe.to_dict("records")
        if not combinations:
            raise ValueError("combinations is empty: give (source, target) column pairs")
        self.combinations, self.name, self.batch_size = [tuple(c) for c in combinations], name, batch_size
        self.write_csv, self.truncate_dim, self.primary_metric = write_csv, truncate_dim, "negative_mse"
        self.csv_file = csv_name("mse_evaluation", name)
        self.csv_headers = ["epoch", "steps"] + [f"{s}-{t}" for s, t in self.combinations]
        self.data = {}
        for src, trg in self.combinations:
            try:
                rows = [(r[src], r[trg]) for r in dataframe if r[src].strip() != "" and r[trg].strip() != ""]
            except KeyError as e:
                raise ValueError(f"a dataframe row has no column {e.args[0]!r} named in combinations") from None
            if not rows:
                raise ValueError(f"no row has non-empty {src!r} and {trg!r} texts")
            self.data[(src, trg)] = ([s for s, _ in rows], [t for _, t in rows])
        sources = list(dict.fromkeys(s for srcs, _ in self.data.values() for s in srcs))
        emb = embed(teacher_model, sources, truncate_dim, batch_size=batch_size, convert_to_numpy=True)  # (S, D)
        self.teacher_embeddings = dict(zip(sources, emb))

    def __call__(self, model, output_path=None, epoch=-1, steps=-1) -> dict[str, float]:
        model.eval()
        mses = []
        for pair in self.combinations:
            srcs, trgs = self.data[pair]
            teacher = np.stack([self.teacher_embeddings[s] for s in srcs])  # (N, D)
            with torch.no_grad():
                student = embed(model, trgs, self.truncate_dim, batch_size=self.batch_size, convert_to_numpy=True)
            mses.append(_mse100(teacher, np.asarray(student)))
        return self.finish(model, {"negative_mse": -float(np.mean(mses))}, output_path, epoch, steps, mses)

    @property
    def description(self) -> str:
        return "Knowledge Distillation"
