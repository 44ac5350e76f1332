"""LabelAccuracyEvaluator: classification accuracy of a SoftmaxLoss head over a DataLoader of
labelled sentence pairs (the NLI setup of the original SBERT paper).

Mirrors `sentence_transformers/evaluation/LabelAccuracyEvaluator.py` v3.4: the DataLoader
yields examples with `.texts` and `.label` (ST's InputExample) or `(texts, label)` tuples; each
text column is tokenized with `model.tokenize`; `softmax_model(features, labels=None)` must return
`(embeddings, logits)`. Key `accuracy`, CSV `accuracy_evaluation[_{name}]_results.csv`.
Not included: `model.smart_batching_collate` (the collate function lives here).
"""
import torch

from tinyst.evaluation.base import SentenceEvaluator, csv_name


def _text_label(example):
    if hasattr(example, "texts"):
        return list(example.texts), example.label
    if isinstance(example, (tuple, list)) and len(example) == 2:
        return list(example[0]), example[1]
    raise TypeError(f"expected an example with .texts/.label or a (texts, label) pair, got {type(example).__name__}")


class LabelAccuracyEvaluator(SentenceEvaluator):
    def __init__(self, dataloader, name: str = "", softmax_model=None, write_csv: bool = True):
        super().__init__()
        if softmax_model is None:
            raise ValueError("LabelAccuracyEvaluator needs softmax_model (a SoftmaxLoss returning logits)")
        self.dataloader, self.name, self.softmax_model, self.write_csv = dataloader, name, softmax_model, write_csv
        self.csv_file = csv_name("accuracy_evaluation", name)
        self.csv_headers = ["epoch", "steps", "accuracy"]
        self.primary_metric = "accuracy"

    def __call__(self, model, output_path=None, epoch=-1, steps=-1) -> dict[str, float]:
        model.eval()

        def collate(batch):
            texts, labels = zip(*(_text_label(ex) for ex in batch))
            if len({len(t) for t in texts}) != 1:
                raise ValueError("all examples in a batch must have the same number of texts")
            features = [model.tokenize([t[k] for t in texts]) for k in range(len(texts[0]))]
            return features, torch.tensor(labels)

        self.dataloader.collate_fn = collate
        correct = total = 0
        for features, labels in self.dataloader:
            features = [{k: v.to(model.device) for k, v in f.items()} for f in features]
            with torch.no_grad():
                _, logits = self.softmax_model(features, labels=None)  # (B, num_labels)
            correct += int((logits.argmax(dim=1) == labels.to(logits.device)).sum())
            total += logits.shape[0]
        if total == 0:
            raise ValueError("the dataloader yielded no examples")
        return self.finish(model, {"accuracy": correct / total}, output_path, epoch, steps, [correct / total])
