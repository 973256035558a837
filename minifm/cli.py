"""The command line: `minifm train gpt|bert|dcgan`, `minifm sample`, `minifm eval`,
`minifm explain`, `minifm tune gpt|bert|dcgan`.

Argument parsing only: the commands themselves are minifm/train/commands.py (and
minifm/train/explain_command.py). Every field
of a task's config dataclass and of TrainConfig becomes an option (`--n-layer 6`,
`--max-steps 500`, `--no-bias`), with the help text and choices declared beside the
field, so the command line never drifts from the code.

A mistake of the user's (a bad value, a missing file, a checkpoint that does not fit)
ends with one plain line on stderr and exit code 2; a traceback appears only with
--debug (or MINIFM_DEBUG=1), or for a bug in minifm.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import subprocess
import sys
import typing

from . import __version__, distributed, runtime
from .train import commands, compress_command, explain_command, tune
from .train.config import TrainConfig
from .train.settings import ConfigError
from .train.tasks import TASKS

ALIASES = {"learning_rate": ["--lr"]}  # the short names people type


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser, with its errors in two lines instead of the whole usage."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n(`{self.prog} --help` lists the options)\n")


class HelpFormatter(argparse.HelpFormatter):
    """argparse's help, with each option's default appended unless its help gives it."""

    def _get_help_string(self, action):
        help = action.help or ""
        if "default" in help or action.default in (None, argparse.SUPPRESS) or not help:
            return help
        return f"{help} (default: %(default)s)"


def option_name(field_name):
    return "--" + field_name.replace("_", "-")


def optional(base):
    """An argparse type for a setting that may be None: 'none' or 'off' gives None."""
    def parse(text):
        return None if text.lower() in ("none", "off") else base(text)
    parse.__name__ = base.__name__  # argparse names the type in its error messages
    return parse


def add_dataclass_options(parser, cls, defaults=None, choices=None, keep_defaults=True):
    """An option for each field of the dataclass `cls` (but `extras`), with the field's
    help and choices; `defaults` and `choices` ({field: ...}) override the field's own.
    keep_defaults=False gives every option the default SUPPRESS, so that parsing shows
    which options were given."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        kind = hints[f.name]
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        base = args[0] if args else kind
        if base not in (bool, int, float, str):
            continue
        default = (defaults or {}).get(f.name, f.default) if keep_defaults else argparse.SUPPRESS
        kwargs = dict(dest=f.name, default=default, help=f.metadata.get("help", ""))
        if base is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["type"] = optional(base) if typing.get_args(kind) else base
            kwargs["choices"] = (choices or {}).get(f.name, f.metadata.get("choices"))
            kwargs["metavar"] = None if kwargs["choices"] else base.__name__.upper()
        parser.add_argument(option_name(f.name), *ALIASES.get(f.name, []), **kwargs)


def build_parser(keep_defaults=True):
    parser = ArgumentParser(prog="minifm", description=__doc__.splitlines()[0],
                                     allow_abbrev=False)
    parser.add_argument("--version", action="version", version=f"minifm {__version__}")
    parser.add_argument("--debug", action="store_true",
                        default=bool(os.environ.get("MINIFM_DEBUG")),
                        help="show tracebacks of errors (also: MINIFM_DEBUG=1)")
    sub = parser.add_subparsers(dest="command", required=True)

    def leaf(parent, name, help):
        p = parent.add_parser(name, help=help, description=help, allow_abbrev=False,
                              formatter_class=HelpFormatter)
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show tracebacks of errors (also: MINIFM_DEBUG=1)")
        p.add_argument("--threads", type=int, default=None,
                       help="threads for minifm's kernels and matrix products, NumPy's "
                            "OpenBLAS then on one (default: 1 on machines with 2 cores or "
                            "fewer, else the libraries' own)")
        p.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                       help="where the model runs (cuda needs CuPy and a GPU)")
        return p

    def task_leaf(parent, name, task_cls, out_dir=None):
        """A task's subcommand with an option for every setting of it and of TrainConfig."""
        p = leaf(parent, name, task_cls.__doc__.splitlines()[0])
        add_dataclass_options(p, task_cls.config_class, keep_defaults=keep_defaults)
        defaults = {**task_cls.train_defaults, **({"out_dir": out_dir} if out_dir else {})}
        add_dataclass_options(p, TrainConfig, defaults,
                              {"early_stopping_metric": task_cls.val_metrics}, keep_defaults)
        return p

    train = sub.add_parser("train", help="train a model", allow_abbrev=False)
    models = train.add_subparsers(dest="task", required=True)
    for name, task_cls in TASKS.items():
        p = task_leaf(models, name, task_cls)
        p.add_argument("--resume", action="store_true",
                       help="continue the run in --out-dir from its checkpoint (its model, "
                            "data and schedule settings; --max-steps may grow)")
        p.add_argument("--overwrite", action="store_true",
                       help="replace the run in --out-dir (its files are deleted)")
        p.add_argument("--samples", type=int, default=1, help="samples to show after training")
        p.add_argument("--nproc", type=int, default=1,
                       help="processes training data-parallel, started with mpiexec (each "
                            "takes batch_size / nproc of every batch; needs mpi4py)")

    p = leaf(sub, "sample", "sample from a trained model")
    p.add_argument("--checkpoint", required=True, help="a checkpoint written by `minifm train`")
    p.add_argument("--seed", type=int, default=0, help="seed of the sampling")
    p.add_argument("--prompt", default=argparse.SUPPRESS,
                   help="gpt: the text to continue (default: a newline); bert: the text "
                        "whose blanks to fill (default: the start of the test split)")
    p.add_argument("--max-new-tokens", type=int, default=argparse.SUPPRESS,
                   help="gpt: tokens to generate (default: 300)")
    p.add_argument("--temperature", type=float, default=argparse.SUPPRESS,
                   help="gpt: sampling temperature, 0 for greedy decoding (default: 0.8)")
    p.add_argument("--top-k", type=int, default=argparse.SUPPRESS,
                   help="gpt: sample among the k most likely tokens (default: all)")
    p.add_argument("--out", dest="path", default=argparse.SUPPRESS,
                   help="dcgan: where to write the image grid (default: "
                        "samples_seed<SEED>.png beside the checkpoint)")

    p = leaf(sub, "eval", "evaluate a trained model on a split")
    p.add_argument("--checkpoint", required=True, help="a checkpoint written by `minifm train`")
    p.add_argument("--split", default="test", choices=("val", "test"), help="the split")
    p.add_argument("--data", action="append", default=None, metavar="FILE",
                   help="language models: report loss and perplexity on this text file "
                        "instead of a split (repeat for several corpora)")
    p.add_argument("--groups", default=None, metavar="FILE|FIELD",
                   help="classifiers: metrics per group, the groups being a field the task "
                        "names (resnet: label) or a file with one group name per example")

    search = sub.add_parser("tune", help="search hyperparameters on the validation split "
                            "(Optuna: pip install optuna)", allow_abbrev=False)
    models = search.add_subparsers(dest="task", required=True)
    for name, task_cls in TASKS.items():
        p = task_leaf(models, name, task_cls, out_dir=f"runs/tune-{name}")
        p.add_argument("--trials", type=int, required=True,
                       help="trials the study should hold when done (a rerun resumes it)")
        p.add_argument("--param", action="append", required=True, metavar="NAME=KIND:...",
                       help="a setting to search: NAME=uniform:LOW:HIGH, loguniform:LOW:HIGH, "
                            "int:LOW:HIGH, logint:LOW:HIGH or choice:A,B,...; the other "
                            "options fix the rest (repeat for each setting)")
        p.add_argument("--startup-trials", type=int, default=4,
                       help="random trials before TPE models the losses, and before pruning")
        p.add_argument("--sampler-seed", type=int, default=0, help="seed of Optuna's sampler")

    p = leaf(sub, "explain", "draw what a trained model looks at (PNGs; needs matplotlib)")
    p.add_argument("--checkpoint", required=True, help="a checkpoint written by `minifm train`")
    p.add_argument("--text", default=None,
                   help="gpt: the text whose next token to explain; bert: a text with a "
                        "[MASK] to fill (else its last token is masked)")
    p.add_argument("--out", default=None,
                   help="the folder for the pictures (default: explain/ beside the checkpoint)")
    p.add_argument("--steps", type=int, default=50, help="integrated gradients' steps")

    p = leaf(sub, "compress", "prune, fine-tune and quantize a trained model; report the cost")
    p.add_argument("--checkpoint", required=True, help="a checkpoint written by `minifm train`")
    p.add_argument("--out", required=True, help="the compressed checkpoint to write (and its "
                                                "report, with the suffix .json)")
    p.add_argument("--prune", type=float, default=None, metavar="FRACTION",
                   help="prune this fraction of the Linear and Conv2d weights")
    p.add_argument("--structured", action="store_true",
                   help="prune whole output channels (L2 norm) instead of single weights")
    p.add_argument("--finetune-steps", type=int, default=0,
                   help="training steps after pruning")
    p.add_argument("--quantize", choices=("int8",), default=None,
                   help="dynamic int8 quantization of the Linear layers")
    return parser


def message(err):
    """The one line that tells the user what went wrong, with settings as options."""
    if isinstance(err, ConfigError):
        text = err.detail
        for name in err.fields:
            text = re.sub(rf"\b{name}=", option_name(name) + "=", text)
        return text
    if isinstance(err, OSError) and err.filename:
        return f"{err.strerror or err}: {err.filename}"
    return str(err)


def main(argv=None):
    """Run the command line `argv` (default: sys.argv[1:]); returns the exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    try:
        command = prepare(args, argv)
    except (ValueError, OSError) as err:  # what the user can fix: a plain line, no traceback
        if args.debug:
            raise
        print(f"minifm {args.command}: error: {message(err)}", file=sys.stderr)
        print("(run with --debug for the traceback)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("minifm: interrupted", file=sys.stderr)
        return 130
    return command()


def prepare(args, argv):
    """Check the parsed command and do all of it that can fail on the user's input;
    returns a function that does the rest (the training) and gives the exit code."""
    runtime.limit_threads(args.threads)
    device = runtime.check_device(args.device)
    if args.command == "sample":
        options = {k: getattr(args, k) for k in ("prompt", "max_new_tokens", "temperature",
                                                  "top_k", "path") if hasattr(args, k)}
        print(commands.sample_checkpoint(args.checkpoint, seed=args.seed, device=device,
                                         **options))
        return lambda: 0
    if args.command == "explain":
        paths = explain_command.explain_checkpoint(args.checkpoint, args.text, args.out,
                                                   args.steps, device)
        print("\n".join(paths))
        return lambda: 0
    if args.command == "compress":
        report = compress_command.compress_checkpoint(
            args.checkpoint, args.out, args.prune, args.structured, args.finetune_steps,
            args.quantize, device)
        print(compress_command.describe(report))
        return lambda: 0
    if args.command == "eval":
        if args.data:
            result = commands.evaluate_corpora(args.checkpoint, args.data, device)
        elif args.groups:
            result = commands.evaluate_groups(args.checkpoint, args.groups, args.split, device)
        else:
            result = commands.evaluate_checkpoint(args.checkpoint, args.split, device)
        print(json.dumps(result, indent=2))
        return lambda: 0
    task_cls = TASKS[args.task]
    if args.command == "tune":
        types = tune.field_types(args.task)
        params = [tune.parse_param(text, types) for text in args.param]
        if args.trials < 1 or args.startup_trials < 0:
            raise ValueError("--trials must be >= 1 and --startup-trials >= 0")
        search = tune.Search(args.task, fields_of(task_cls.config_class, args),
                             fields_of(TrainConfig, args), params, device,
                             args.startup_trials, args.sampler_seed)
        study = search.open_study()
        return lambda: run_search(search, study, args.trials)
    if args.samples < 0:
        raise ValueError(f"--samples must be >= 0, got {args.samples}")
    if args.nproc > 1 and distributed.launched_world_size() == 1:
        command = distributed.mpiexec_command(args.nproc, argv)
        return lambda: subprocess.call(command)
    if distributed.launched_world_size() > 1:
        distributed.init_process_group("nccl" if device == "cuda" else "mpi")
    given = vars(build_parser(keep_defaults=False).parse_args(argv))
    trainer = commands.prepare_training(
        args.task, fields_of(task_cls.config_class, args), fields_of(TrainConfig, args),
        given=given, resume=args.resume, overwrite=args.overwrite, device=device)
    if args.resume and trainer.rank == 0:
        print(f"resumed from {trainer.checkpoint_path} at step {trainer.step}")
    return lambda: train(trainer, args.samples)


def train(trainer, samples):
    """Train, print the summary and `samples` samples; exit code 0 if the run ended well."""
    summary = trainer.fit()
    if trainer.rank != 0:  # rank 0 reports for a data-parallel run
        return 0
    print(json.dumps(summary, indent=2))
    for i in range(samples):
        print(f"--- sample {i + 1} ---")
        print(trainer.task.sample(seed=i))
    return 0 if summary["outcome"] in ("finished", "early-stopped") else 1


def run_search(search, study, trials):
    """Run the search's remaining trials and print its summary; exit code 0."""
    print(json.dumps(search.run(study, trials), indent=2))
    return 0


def fields_of(cls, args):
    """{field: value} of the dataclass `cls`'s fields among the parsed arguments."""
    return {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if hasattr(args, f.name)}


if __name__ == "__main__":
    sys.exit(main())
