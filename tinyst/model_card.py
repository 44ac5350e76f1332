"""The model card (README.md) written next to a saved model.

Mirrors the front matter and sections of `sentence_transformers/model_card.py` v3.4 in a much
smaller form: YAML front matter (library_name, pipeline_tag, tags, base_model), the model's
architecture, output dimensions, similarity function and a usage snippet.
Not included: widget examples, CO2 emissions, citations of every loss.
"""
from pathlib import Path


def write_model_card(model, folder: Path, model_name=None, train_datasets=None) -> None:
    card = getattr(model, "model_card_data", None)
    base = getattr(card, "base_model", None)
    lines = ["---", "library_name: sentence-transformers", "pipeline_tag: sentence-similarity", "tags:",
             "- sentence-transformers", "- sentence-similarity", "- feature-extraction", "- tinyst"]
    if base:
        lines.append(f"base_model: {base}")
    lines += ["---", "", f"# {model_name or 'SentenceTransformer model'}", "",
              "This model was saved by tinyst in the sentence-transformers layout.", "",
              "## Model Details", "",
              f"- **Maximum Sequence Length:** {model.max_seq_length} tokens",
              f"- **Output Dimensionality:** {model.get_sentence_embedding_dimension()} dimensions",
              f"- **Similarity Function:** {model.similarity_fn_name}", "",
              "### Full Model Architecture", "", "```", repr(model), "```", "",
              "## Usage", "", "```python", "from sentence_transformers import SentenceTransformer", "",
              'model = SentenceTransformer("path/to/this/folder")',
              'embeddings = model.encode(["The weather is lovely today."])', "```", ""]
    (Path(folder) / "README.md").write_text("\n".join(lines))
