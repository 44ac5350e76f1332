"""Tiny random-weight BERT / MPNet models built in the tests, with transformers and sentence-transformers
(test-only oracles), so parity tests need neither the hub nor the shared folder.

make_tiny_model_dir(tmp, arch, **config) -> an ST folder saved by sentence-transformers itself
make_hf_checkpoint_dir(tmp, arch)         -> a plain HF *ForMaskedLM checkpoint (prefixed keys, MLM head)
"""
import builtins
from pathlib import Path

import torch

SPECIAL = {"bert": ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"], "mpnet": ["<s>", "<pad>", "</s>", "[UNK]", "<mask>"]}


def corpus() -> list[str]:
    """A deterministic English corpus every Python ships: the builtins' docstrings."""
    docs = [getattr(builtins, n).__doc__ or "" for n in sorted(dir(builtins))]
    docs += ["A man is playing a guitar.", "The cat sits on the mat.", "Two dogs run through the snow."]
    return [d for d in docs if d.strip()]


def make_tokenizer(arch: str, vocab_size: int = 600):
    """A WordPiece tokenizer trained on corpus(), wrapped as the HF fast tokenizer of `arch`."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertTokenizerFast, MPNetTokenizerFast

    special = SPECIAL[arch]
    unk = "[UNK]"
    tok = Tokenizer(models.WordPiece(unk_token=unk))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    tok.train_from_iterator(corpus(), trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=special,
                                                                 show_progress=False))
    # the trainer numbers pieces in hash-map order, which changes from run to run; renumber them (specials,
    # then sorted) so every run builds the same tiny models and a near-tie in a parity test cannot come and go
    pieces = special + sorted(set(tok.get_vocab()) - set(special))
    tok.model = models.WordPiece({p: i for i, p in enumerate(pieces)}, unk_token=unk)
    if arch == "bert":
        cls, sep = "[CLS]", "[SEP]"
        tok.post_processor = processors.BertProcessing((sep, tok.token_to_id(sep)), (cls, tok.token_to_id(cls)))
        return BertTokenizerFast(tokenizer_object=tok, unk_token=unk, pad_token="[PAD]", cls_token=cls,
                                 sep_token=sep, mask_token="[MASK]")
    tok.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
    return MPNetTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", sep_token="</s>",
                              cls_token="<s>", unk_token=unk, pad_token="<pad>", mask_token="<mask>")


def hf_config(arch: str, vocab_size: int, **overrides):
    from transformers import BertConfig, MPNetConfig

    base = dict(vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                intermediate_size=37, max_position_embeddings=64, hidden_dropout_prob=0.0,
                attention_probs_dropout_prob=0.0)
    base.update(overrides)
    if arch == "bert":
        return BertConfig(**base)
    return MPNetConfig(**{**base, "max_position_embeddings": base["max_position_embeddings"] + 2})


def make_tiny_model_dir(tmp, arch="bert", seed=0, pooling="mean", normalize=False, dense=None, **config) -> Path:
    """An ST-format folder with random weights, written by sentence-transformers 3.4.1."""
    from sentence_transformers import SentenceTransformer, models
    from transformers import BertModel, MPNetModel

    tmp = Path(tmp)
    hf_dir, st_dir = tmp / f"hf-{arch}-{seed}", tmp / f"st-{arch}-{seed}"
    tokenizer = make_tokenizer(arch)
    torch.manual_seed(seed)
    cfg = hf_config(arch, len(tokenizer), **config)
    model = (BertModel if arch == "bert" else MPNetModel)(cfg)
    with torch.no_grad():  # non-trivial LayerNorm and bias values, so a wrong key would show
        for name, p in model.named_parameters():
            if "LayerNorm" in name or name.endswith("bias"):
                p.add_(torch.randn_like(p) * 0.1)
    model.save_pretrained(hf_dir)
    tokenizer.save_pretrained(hf_dir)
    first = models.Transformer(str(hf_dir), max_seq_length=cfg.max_position_embeddings - (2 if arch == "mpnet" else 0))
    modules = [first, models.Pooling(first.get_word_embedding_dimension(), pooling)]
    if dense:
        modules.append(models.Dense(modules[-1].get_sentence_embedding_dimension(), dense))
    if normalize:
        modules.append(models.Normalize())
    SentenceTransformer(modules=modules, device="cpu").save(str(st_dir))
    return st_dir


def make_hf_checkpoint_dir(tmp, arch="bert", seed=0, **config) -> Path:
    """A plain HF masked-LM checkpoint: keys prefixed with bert./mpnet., an MLM head, no modules.json."""
    from transformers import BertForMaskedLM, MPNetForMaskedLM

    out = Path(tmp) / f"hf-mlm-{arch}-{seed}"
    tokenizer = make_tokenizer(arch)
    torch.manual_seed(seed)
    cfg = hf_config(arch, len(tokenizer), **config)
    (BertForMaskedLM if arch == "bert" else MPNetForMaskedLM)(cfg).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
