"""What `minifm train`, `minifm sample` and `minifm eval` do, as plain functions: the
command line (minifm/cli.py) parses the arguments and calls these.

Everything a command checks it checks first, before it writes anything: the settings
(each config's __post_init__), the run folder (run_folder.py), the data (the task's
constructor) and, when resuming, that the checkpoint fits the settings given.
"""
from __future__ import annotations

import dataclasses
import math
import os

import numpy as np

from ..autograd import no_grad
from ..data import load_text
from ..metrics import MetricFrame, accuracy_score
from .checkpoint import load_modules, read_checkpoint
from .config import TrainConfig
from .run_folder import check_run_folder, clear_run_folder
from .settings import ConfigError
from .tasks import TASKS
from .trainer import Trainer

# TrainConfig settings a resumed run may change: they extend or watch the schedule
# without changing the steps already taken.
RESUMABLE_SETTINGS = ("max_steps", "eval_interval", "log_interval",
                      "early_stopping_patience", "nan_policy")


def prepare_training(task_name, task_settings, train_settings, given=(), resume=False,
                     overwrite=False, device="cpu", log=print):
    """A Trainer ready to `fit()`, for a new run or one resumed from its checkpoint.

    task_settings and train_settings hold every field of the task's config and of
    TrainConfig; `given` names those the user set explicitly. A resumed run takes the
    task's settings and the schedule from the checkpoint: a given setting that differs
    from it is an error, except the RESUMABLE_SETTINGS.
    """
    task_cls = TASKS[task_name]
    task_settings = resolve_paths(task_settings)
    train_settings = {**train_settings, "out_dir": os.path.abspath(train_settings["out_dir"])}
    out_dir, checkpoint_name = train_settings["out_dir"], train_settings["checkpoint_name"]
    check_run_folder(out_dir, checkpoint_name, resume=resume, overwrite=overwrite)
    if resume:
        ckpt = read_checkpoint(os.path.join(out_dir, checkpoint_name))
        task_config, train_cfg = resumed_settings(ckpt, task_settings, train_settings, given)
        task = task_cls.from_config(task_config, out_dir, device=device)
        trainer = Trainer(task, train_cfg, log=log).resume(ckpt)
    else:
        train_cfg = TrainConfig(**train_settings)
        task = task_cls(task_cls.config_class(**task_settings), out_dir, device=device)
        trainer = Trainer(task, train_cfg, log=log)
    if trainer.rank == 0:  # the other ranks of a data-parallel run write nothing
        clear_run_folder(out_dir, checkpoint_name, overwrite=overwrite)
    return trainer


PATH_SETTINGS = ("data", "classifier", "init_from")  # task settings naming a file or folder


def resolve_paths(task_settings):
    """The settings with their paths (PATH_SETTINGS) made absolute, so that a checkpoint works
    from any folder and a path given again on resume matches the one it saved."""
    return {name: os.path.abspath(value) if name in PATH_SETTINGS and value else value
            for name, value in task_settings.items()}


def resumed_settings(ckpt, task_settings, train_settings, given):
    """(the task's config dict, TrainConfig) of a run resumed from `ckpt`, after checking
    that no setting given contradicts it."""
    task_config = ckpt["config"]["task"]
    task_settings = resolve_paths(task_settings)
    for name in given:
        if name in task_settings and task_settings[name] != task_config.get(name):
            raise ConfigError(
                "resume", f"{name}={task_settings[name]!r} differs from the checkpoint's "
                f"{name}={task_config.get(name)!r}: a resumed run keeps the model, data and "
                "tokenizer settings of its checkpoint; drop the option, or start a new run "
                "(--overwrite, or another --out-dir)", name)
    saved = ckpt["config"]["trainer"]
    changes = {}
    for name in given:
        if name not in train_settings or train_settings[name] == saved.get(name):
            continue
        if name not in RESUMABLE_SETTINGS + ("out_dir", "checkpoint_name"):
            raise ConfigError(
                "resume", f"{name}={train_settings[name]!r} differs from the checkpoint's "
                f"{name}={saved.get(name)!r}: a resumed run may change only "
                f"{', '.join(RESUMABLE_SETTINGS)}", name)
        changes[name] = train_settings[name]
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    train_cfg = TrainConfig(**{**{k: v for k, v in saved.items() if k in names}, **changes,
                               "out_dir": train_settings["out_dir"],
                               "checkpoint_name": train_settings["checkpoint_name"]})
    step = ckpt["trainer"]["step"]
    if train_cfg.max_steps <= step:
        raise ConfigError("resume", f"the checkpoint is at step {step}, and max_steps="
                          f"{train_cfg.max_steps} leaves nothing to train: give a larger "
                          "max_steps to train further", "max_steps")
    return task_config, train_cfg


def task_from_checkpoint(path, load_data=True, device="cpu"):
    """(task, checkpoint): the task a checkpoint was trained with, holding its weights.

    The task's run folder is the checkpoint's own folder, wherever it was trained, so a
    moved run still writes its samples beside its checkpoint. With load_data=False only
    the models are built (enough to sample).
    """
    ckpt = read_checkpoint(path)
    config = ckpt["config"]["task"]
    if config.get("name") not in TASKS:
        raise ValueError(f"{path}: a checkpoint of an unknown task {config.get('name')!r}; "
                         f"this minifm knows {', '.join(TASKS)}")
    out_dir = os.path.dirname(os.path.abspath(path))
    task = TASKS[config["name"]].from_config(config, out_dir, load_data=load_data, device=device)
    load_modules(ckpt, task.modules)
    if load_data:
        task.load_data_state(ckpt["data"])  # e.g. which phase a two-phase task was in
    return task, ckpt


def sample_checkpoint(checkpoint, seed=0, device="cpu", **options):
    """What the task of the checkpoint file `checkpoint` samples (a text, or an image's
    path). `options` (prompt, temperature, path, ...) must be ones its sample takes."""
    task, _ = task_from_checkpoint(checkpoint, load_data=False, device=device)
    unknown = sorted(set(options) - set(task.sample_options))
    if unknown:
        raise ValueError(f"{', '.join(unknown)}: not an option of sampling a {task.name} "
                         f"model (its options: {', '.join(task.sample_options)})")
    return task.sample(seed=seed, **options)


def evaluate_checkpoint(checkpoint, split="test", device="cpu"):
    """{"step", "split", metric: value, ...} of the model of the checkpoint file
    `checkpoint` on a split."""
    task, ckpt = task_from_checkpoint(checkpoint, load_data=True, device=device)
    with no_grad():
        metrics = task.evaluate(split)
    if not metrics:
        raise ValueError(f"the run has no {split} split ({split}_frac was 0 when it was "
                         "trained); evaluate another split (--split val)")
    return {"step": ckpt["trainer"]["step"], "split": split, **metrics}


def evaluate_groups(checkpoint, groups, split="test", device="cpu"):
    """A classifier's metrics on a split overall and per group (fairlearn's MetricFrame):
    `groups` is a field the task names (the resnet task: "label") or a text file with one
    group name per example of the split, in the split's order."""
    task, ckpt = task_from_checkpoint(checkpoint, load_data=True, device=device)
    if not hasattr(task, "predictions"):
        raise ValueError(f"--groups evaluates classifiers; {checkpoint} is a {task.name} "
                         "model")
    y_true, y_pred = task.predictions(split)
    fields = task.group_fields(split)
    sensitive = fields[groups] if groups in fields else _read_groups(groups, len(y_true),
                                                                     sorted(fields))
    frame = MetricFrame(metrics={"accuracy": accuracy_score, "count": _count},
                        y_true=y_true, y_pred=y_pred, sensitive_features=sensitive)
    accuracy = frame.by_group["accuracy"]
    return {"step": ckpt["trainer"]["step"], "split": split, "groups": groups,
            "overall": frame.overall, "by_group": frame.by_group,
            "accuracy_difference": frame.difference()["accuracy"],
            "accuracy_ratio": frame.ratio()["accuracy"],
            "worst_group": min(accuracy, key=accuracy.get)}


def _count(y_true, y_pred):
    return len(y_true)


def _read_groups(path, count, fields):
    """One group name per line of a text file, for `count` examples."""
    if not os.path.isfile(path):
        raise ValueError(f"--groups {path}: neither a field of this task ({', '.join(fields)}) "
                         "nor a file")
    with open(path, encoding="utf-8") as f:
        names = [line.strip() for line in f if line.strip()]
    if len(names) != count:
        raise ValueError(f"--groups {path}: {len(names)} group names for {count} examples "
                         "(one line per example of the split, in order)")
    return np.asarray(names)


def evaluate_corpora(checkpoint, paths, device="cpu"):
    """{"step", "corpora": {path: metrics}}: a language model's loss on each text file, an
    evaluation across data sets. Each text is encoded with the checkpoint's tokenizer and
    scored as the task scores its validation split (the same windows, batches and seed),
    so the numbers compare with its val loss; perplexity is exp(the language-model loss:
    next-token for gpt, masked-token for bert)."""
    task, ckpt = task_from_checkpoint(checkpoint, load_data=False, device=device)
    if not hasattr(task, "tokenizer"):
        raise ValueError(f"--data evaluates language models; {checkpoint} is a {task.name} "
                         "model: evaluate its splits (--split) instead")
    results = {}
    for path in paths:
        try:
            tokens = np.asarray(task.tokenizer.encode(load_text(path, task.cfg.encoding)))
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from None
        task.splits[path] = tokens
        with no_grad():
            metrics = task.evaluate(path)
        if not metrics:
            raise ValueError(f"{path}: {len(tokens)} tokens are too few for one evaluation "
                             "window of this model")
        lm_loss = metrics.get("mlm_loss", metrics["loss"])
        results[path] = {"tokens": len(tokens), **metrics, "perplexity": math.exp(lm_loss)}
    return {"step": ckpt["trainer"]["step"], "corpora": results}
