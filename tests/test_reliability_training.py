"""Reliability catalogue, training arguments and trainer set-up: bad or contradictory settings fail before any
step with the argument, the allowed values and the given value named; nothing is written.

Already covered elsewhere (not repeated), in test_trainer.py::test_contradictory_arguments: unknown
eval_strategy / save_strategy / lr_scheduler_type / batch_sampler, learning_rate=0, batch size 0, fp16 with
bf16, load_best_model_at_end without evaluation, with save_steps not a multiple of eval_steps, with
save_strategy != eval_strategy, warmup_ratio > 1; and ::test_fp16_on_cpu_is_refused.
"""
import pytest

import tinyst
from tinyst import losses
from tinyst.training_args import SentenceTransformerTrainingArguments as Args
from tiny_models import make_tiny_model_dir

NAN = float("nan")
BAD_ARGS = [  # (id, kwargs, message)
    ("negative learning rate", dict(learning_rate=-1e-3), r"learning_rate must be a positive number, got -0\.001"),
    ("NaN learning rate", dict(learning_rate=NAN), r"learning_rate must be a positive number, got nan"),
    ("learning rate as a string", dict(learning_rate="1e-3"), r"learning_rate must be a positive number, got '1e-3'"),
    ("negative train batch size", dict(per_device_train_batch_size=-8), r"per_device_train_batch_size must be a posit"),
    ("float batch size", dict(per_device_train_batch_size=8.0), r"per_device_train_batch_size must be an int, got 8"),
    ("bool batch size", dict(per_device_train_batch_size=True), r"per_device_train_batch_size must be a .* got True"),
    ("zero eval batch size", dict(per_device_eval_batch_size=0), r"per_device_eval_batch_size must be a positive"),
    ("zero accumulation", dict(gradient_accumulation_steps=0), r"gradient_accumulation_steps must be a positive"),
    ("unknown logging strategy", dict(logging_strategy="always"),
     r"logging_strategy must be one of \('no', 'steps', 'epoch'\), got 'always'"),
    ("unknown multi-dataset sampler", dict(multi_dataset_batch_sampler="zip"),
     r"'zip' is not a valid MultiDatasetBatchSamplers; choose one of \['round_robin', 'proportional'\]"),
    ("unknown nan_loss policy", dict(nan_loss="ignore"), r"nan_loss must be 'raise' or 'skip', got 'ignore'"),
    ("zero epochs", dict(num_train_epochs=0), r"num_train_epochs must be > 0 when max_steps is not set, got 0"),
    ("zero save_steps", dict(save_steps=0), r"save_steps must be > 0 .* got 0"),
    ("negative logging_steps", dict(logging_steps=-5), r"logging_steps must be > 0 .* got -5"),
    ("negative warmup_steps", dict(warmup_steps=-10), r"warmup_steps must be an int >= 0, got -10"),
    ("best model: fraction and step count", dict(load_best_model_at_end=True, eval_strategy="steps", eval_steps=0.1,
                                                 save_steps=50),
     r"load_best_model_at_end needs save_steps \(50\) and eval_steps \(0\.1\) both as step counts or both as "
     r"fractions"),
    ("best model: fractions that do not line up", dict(load_best_model_at_end=True, eval_strategy="steps",
                                                       eval_steps=0.2, save_steps=0.3),
     r"save_steps \(0\.3\) to be a multiple of eval_steps \(0\.2\)"),
]


@pytest.mark.parametrize("name,kwargs,message", BAD_ARGS, ids=[b[0] for b in BAD_ARGS])
def test_bad_training_arguments(name, kwargs, message, tmp_path):
    """Each bad setting fails at construction naming the argument and the value given; no output folder appears."""
    with pytest.raises(ValueError, match=message):
        Args(output_dir=str(tmp_path / "out"), **kwargs)
    assert not (tmp_path / "out").exists()


def test_fractions_that_line_up_are_accepted():
    """save_steps 0.4 with eval_steps 0.2 (a multiple, as fractions) passes, as in HF."""
    Args(output_dir="x", load_best_model_at_end=True, eval_strategy="steps", eval_steps=0.2, save_steps=0.4)


def test_misspelled_argument():
    """A typo in an argument name is a TypeError naming it (nothing is silently ignored)."""
    with pytest.raises(TypeError, match="learning_rat"):
        Args(output_dir="x", learning_rat=1e-3)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return tinyst.SentenceTransformer(str(make_tiny_model_dir(tmp_path_factory.mktemp("rt"), "bert")), device="cpu")


def data():
    s = ["A man plays a guitar.", "The cat sits.", "Dogs run in snow.", "It rains."]
    return tinyst.Dataset.from_dict({"sentence1": s, "sentence2": s[::-1], "score": [0.1, 0.9, 0.5, 0.3]})


def trainer_for(model, tmp_path, train=True, **kw):
    args = Args(output_dir=str(tmp_path / "out"), per_device_train_batch_size=2, disable_tqdm=True, **kw)
    return tinyst.SentenceTransformerTrainer(model=model, args=args, train_dataset=data() if train else None,
                                             loss=losses.CoSENTLoss(model))


def test_evaluation_without_anything_to_evaluate(model, tmp_path):
    """eval_strategy='steps' with neither eval_dataset nor evaluator is refused when the trainer is built."""
    with pytest.raises(ValueError, match=r"eval_strategy='steps' needs an eval_dataset or an evaluator"):
        trainer_for(model, tmp_path, eval_strategy="steps", eval_steps=1)


def test_train_without_train_dataset(model, tmp_path):
    """train() without a train_dataset says so, before anything is written."""
    with pytest.raises(ValueError, match=r"train\(\) needs a train_dataset"):
        trainer_for(model, tmp_path, train=False).train()
    assert not (tmp_path / "out").exists()


def test_metric_for_best_model_not_produced(model, tmp_path):
    """A metric_for_best_model the evaluation does not produce is named with the metrics it does produce,
    at the first evaluation, before any checkpoint is saved."""
    trainer = tinyst.SentenceTransformerTrainer(
        model=model, args=Args(output_dir=str(tmp_path / "out"), per_device_train_batch_size=2, eval_strategy="steps",
                               eval_steps=1, save_steps=1, metric_for_best_model="spearman", disable_tqdm=True),
        train_dataset=data(), eval_dataset=data(), loss=losses.CoSENTLoss(model))
    with pytest.raises(ValueError, match=r"metric_for_best_model 'eval_spearman' is not among the evaluation metrics "
                                         r"\['epoch', 'eval_loss', 'eval_runtime'\]"):
        trainer.train()
    assert not list((tmp_path / "out").glob("checkpoint-*"))


@pytest.mark.parametrize("resume,error,message", [
    (True, FileNotFoundError, r"resume_from_checkpoint=True but .*out has no checkpoint"),
    ("nowhere/checkpoint-7", FileNotFoundError, r"nowhere/checkpoint-7 is not a complete checkpoint: "
                                                r"trainer_state\.json is missing"),
], ids=["resume True, none saved", "resume from a missing folder"])
def test_resume_without_a_checkpoint(resume, error, message, model, tmp_path):
    """Resuming when there is nothing to resume from names the folder looked at."""
    with pytest.raises(error, match=message):
        trainer_for(model, tmp_path).train(resume_from_checkpoint=resume)
    assert not list((tmp_path / "out").glob("checkpoint-*"))


def test_bad_optimizer_hyper_parameter(model, tmp_path):
    """An Adam beta outside [0, 1) is named by torch's optimizer when train() builds it, before any step."""
    with pytest.raises(ValueError, match=r"Invalid beta parameter at index 0: 1\.5"):
        trainer_for(model, tmp_path, adam_beta1=1.5).train()
    assert not (tmp_path / "out").exists()
