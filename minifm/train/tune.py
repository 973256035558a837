"""`minifm tune`: hyperparameter search on the validation split, with Optuna.

The method: choose settings by their validation loss, and look at the test split once,
for the chosen run only. Optuna proposes the settings (TPE: a model of which values gave
good losses so far) and stops unpromising runs early (the median rule: a trial whose
validation loss at some step is worse than the median of the earlier trials at that step
is pruned). The Trainer reports each periodic validation through its `on_evaluate`
callback, and ends the run when the pruner says so.

Everything lives in the study folder (`--out-dir`): Optuna's SQLite database study.db,
so an interrupted search resumes where it stopped, one ordinary run folder per trial
(trial_000/, ... with checkpoints, metrics and summary.json), and the report
(tune_report.py). Trial 0 runs the settings as given (the defaults plus the options), so
the table shows what the search gained over them.

Optuna is an optional dependency (`pip install minifm[tune]`), imported when a search runs.
"""
from __future__ import annotations

import json
import math
import os
import typing
from dataclasses import dataclass

from .commands import evaluate_checkpoint, prepare_training
from .config import TrainConfig
from .tasks import TASKS
from .trainer import StopRun
from .tune_report import write_report

# Distribution kinds of `--param NAME=KIND:...`, and the field types each applies to.
KINDS = {"uniform": (float,), "loguniform": (float,), "int": (int,), "logint": (int,),
         "choice": (bool, int, float, str)}
FINISHED = ("COMPLETE", "PRUNED")  # trial states that count towards --trials


@dataclass(frozen=True)
class SearchParam:
    """One searched setting: `kind` and its `values` (low, high) or the choices."""

    name: str
    kind: str
    values: tuple

    def suggest(self, trial):
        """The value Optuna's sampler proposes for this trial."""
        if self.kind == "choice":
            return trial.suggest_categorical(self.name, list(self.values))
        low, high = self.values
        suggest = trial.suggest_int if self.kind in ("int", "logint") else trial.suggest_float
        return suggest(self.name, low, high, log=self.kind.startswith("log"))

    def contains(self, value):
        if self.kind == "choice":
            return value in self.values
        return value is not None and self.values[0] <= value <= self.values[1]


def field_types(task_name):
    """{setting: its type (bool, int, float or str)} of the task's config and TrainConfig."""
    types = {}
    for cls in (TASKS[task_name].config_class, TrainConfig):
        for name, kind in typing.get_type_hints(cls).items():
            args = [a for a in typing.get_args(kind) if a is not type(None)]
            types[name] = args[0] if args else kind
    return types


def parse_value(text, kind):
    if kind is bool:
        if text.lower() not in ("true", "false"):
            raise ValueError(f"{text!r} is not a boolean (true or false)")
        return text.lower() == "true"
    return kind(text)


def parse_param(text, types):
    """A SearchParam from `NAME=uniform:LOW:HIGH`, `loguniform:...`, `int:...`, `logint:...`
    or `NAME=choice:A,B,C`; NAME is any setting of the task or of TrainConfig."""
    name, _, spec = text.partition("=")
    kind, _, rest = spec.partition(":")
    name = name.replace("-", "_")
    if name not in types or types[name] not in (bool, int, float, str):
        raise ValueError(f"--param {text}: {name!r} is not a setting of this task "
                         "(`minifm train TASK --help` lists them)")
    if kind not in KINDS or types[name] not in KINDS[kind]:
        usable = [k for k, allowed in KINDS.items() if types[name] in allowed]
        raise ValueError(f"--param {text}: {name} is a {types[name].__name__} setting; give "
                         f"one of {', '.join(usable)} (e.g. {name}={usable[0]}:LOW:HIGH)")
    try:
        values = tuple(parse_value(v, types[name]) for v in rest.split("," if kind == "choice" else ":"))
    except ValueError as err:
        raise ValueError(f"--param {text}: {err}") from None
    if kind != "choice" and not (len(values) == 2 and values[0] < values[1]):
        raise ValueError(f"--param {text}: give {kind}:LOW:HIGH with LOW < HIGH")
    if kind.startswith("log") and values[0] <= 0:
        raise ValueError(f"--param {text}: a log scale needs LOW > 0")
    return SearchParam(name, kind, values)


def import_optuna():
    """Optuna, or a ValueError saying how to install it (the command line prints it)."""
    try:
        import optuna
    except ImportError:
        raise ValueError("minifm tune needs Optuna: pip install optuna (or minifm[tune])") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


class Search:
    """A study of `trials` runs of a task: fixed settings, searched params, the folder."""

    def __init__(self, task_name, task_settings, train_settings, params, device="cpu",
                 startup_trials=4, sampler_seed=0):
        self.task_name, self.device, self.params = task_name, device, params
        self.task_settings, self.train_settings = task_settings, train_settings
        self.out_dir = os.path.abspath(train_settings["out_dir"])
        self.startup_trials, self.sampler_seed = startup_trials, sampler_seed

    def description(self):
        """What must stay the same when a study resumes (JSON-able)."""
        train = {k: v for k, v in self.train_settings.items() if k != "out_dir"}
        return {"task": self.task_name, "task_settings": self.task_settings,
                "train_settings": train, "params": [[p.name, p.kind, list(p.values)]
                                                    for p in self.params]}

    def open_study(self):
        """The study in out_dir/study.db: created (trial 0 queued with the settings as
        given) or, when it exists, reopened after checking it searches the same thing."""
        optuna = import_optuna()
        os.makedirs(self.out_dir, exist_ok=True)
        study = optuna.create_study(
            study_name="minifm", storage=f"sqlite:///{os.path.join(self.out_dir, 'study.db')}",
            load_if_exists=True, direction="minimize",
            sampler=optuna.samplers.TPESampler(n_startup_trials=self.startup_trials,
                                               seed=self.sampler_seed),
            pruner=optuna.pruners.MedianPruner(n_startup_trials=self.startup_trials,
                                               n_warmup_steps=1))
        description = json.loads(json.dumps(self.description()))  # as stored: lists, not tuples
        saved = study.user_attrs.get("search")
        if saved is None:
            study.set_user_attr("search", description)
            given = {**self.train_settings, **self.task_settings}
            if all(p.contains(given[p.name]) for p in self.params):
                study.enqueue_trial({p.name: given[p.name] for p in self.params})
        elif saved != description:
            raise ValueError(f"{self.out_dir} holds a study of other settings or params; "
                             "give the same ones to resume it, or another --out-dir")
        return study

    def objective(self, trial):
        """Train one run with the trial's settings; its best validation loss."""
        optuna = import_optuna()
        values = {p.name: p.suggest(trial) for p in self.params}
        run_dir = os.path.join(self.out_dir, f"trial_{trial.number:03d}")
        trial.set_user_attr("run", run_dir)
        task_settings = {k: values.get(k, v) for k, v in self.task_settings.items()}
        train_settings = {k: values.get(k, v) for k, v in self.train_settings.items()}
        trainer = prepare_training(self.task_name, task_settings,
                                   {**train_settings, "out_dir": run_dir}, device=self.device)
        trainer.evaluate_test = False  # the test split is for the best trial only

        def report(step, metrics):
            trial.report(metrics[trainer.metric], step)
            if trial.should_prune():
                raise StopRun(f"pruned: val {trainer.metric} {metrics[trainer.metric]:.4f} "
                              "is worse than the median of the earlier trials at this step")

        trainer.on_evaluate = report
        summary = trainer.fit()
        trial.set_user_attr("steps", summary["steps"])
        trial.set_user_attr("wall_seconds", summary["wall_seconds"])
        trial.set_user_attr("checkpoint", summary["best_val"]["checkpoint"])
        if summary["outcome"] == "pruned":
            raise optuna.TrialPruned()
        if summary["outcome"] == "interrupted":
            raise KeyboardInterrupt
        return summary["best_val"]["value"]  # NaN (a non-finite loss) fails the trial

    def run(self, study, trials):
        """Run trials of `study` (open_study's) until it has `trials` finished ones,
        evaluate the best on the test split, write the report; returns the summary."""
        done = sum(t.state.name in FINISHED for t in study.trials)
        if trials > done:
            study.optimize(self.objective, n_trials=trials - done, catch=(ValueError,))
        complete = [t for t in study.trials if t.state.name == "COMPLETE"
                    and math.isfinite(t.value)]
        if not complete:
            raise ValueError(f"no trial of the study in {self.out_dir} completed; see the "
                             "trials' run folders")
        best = study.best_trial
        checkpoint = best.user_attrs["checkpoint"] or os.path.join(
            best.user_attrs["run"], self.train_settings["checkpoint_name"])
        summary = {"study": os.path.join(self.out_dir, "study.db"),
                   "trials": {state: sum(t.state.name == state for t in study.trials)
                              for state in ("COMPLETE", "PRUNED", "FAIL")},
                   "best_trial": best.number, "best_params": best.params,
                   "best_val": best.value, "best_run": best.user_attrs["run"],
                   "test": evaluate_checkpoint(checkpoint, "test", self.device)}
        summary.update(write_report(study, self.out_dir))
        with open(os.path.join(self.out_dir, "tune_summary.json"), "w") as f:
            json.dump(summary, f, indent=2)
        return summary
