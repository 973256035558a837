"""The command line: `minifm train gpt|bert|dcgan`, `minifm sample`, `minifm eval`.

Every field of a task's config dataclass and of TrainConfig becomes an option
(`--n-layer 6`, `--max-steps 500`, `--no-bias`), so the CLI never drifts from the code.
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import sys
import typing

from .train.trainer import TrainConfig, Trainer

# Trainer defaults per task (a task's own defaults live in its config dataclass).
TRAIN_DEFAULTS = {
    "gpt": dict(max_steps=1500, eval_interval=250, warmup_steps=100, min_lr_ratio=0.1,
                grad_clip=1.0, out_dir="runs/gpt"),
    "bert": dict(max_steps=600, eval_interval=100, warmup_steps=50, grad_clip=1.0,
                 out_dir="runs/bert"),
    "dcgan": dict(max_steps=1500, eval_interval=250, warmup_steps=0, min_lr_ratio=1.0,
                  grad_clip=None, early_stopping_metric="frechet_distance", out_dir="runs/dcgan"),
}


def _tasks():
    from .train.tasks import TASKS
    return TASKS


def _add_dataclass_options(parser, cls, defaults=None, skip=()):
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        default = (defaults or {}).get(f.name, f.default)
        flag = "--" + f.name.replace("_", "-")
        kind = hints[f.name]
        args = typing.get_args(kind)
        base = next((a for a in args if a is not type(None)), kind) if args else kind
        if base is bool:
            parser.add_argument(flag, dest=f.name, default=default,
                                action=argparse.BooleanOptionalAction)
        elif base in (int, float, str):
            parser.add_argument(flag, dest=f.name, type=base, default=default,
                                metavar=base.__name__.upper())


def _pick(cls, namespace):
    return cls(**{f.name: getattr(namespace, f.name) for f in dataclasses.fields(cls)
                  if hasattr(namespace, f.name)})


def build_parser():
    parser = argparse.ArgumentParser(prog="minifm", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train a model")
    models = train.add_subparsers(dest="task", required=True)
    for name, task_cls in _tasks().items():
        p = models.add_parser(name, help=task_cls.__doc__.splitlines()[0] if task_cls.__doc__ else name,
                              formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        _add_dataclass_options(p, task_cls.config_class)
        _add_dataclass_options(p, TrainConfig, TRAIN_DEFAULTS.get(name), skip=("extras",))
        p.add_argument("--resume", action="store_true",
                       help="continue from the checkpoint in --out-dir")
        p.add_argument("--samples", type=int, default=1, help="samples to show after training")
        p.add_argument("--threads", type=int, default=None,
                       help="BLAS and Numba threads (default: 1 on machines with 2 cores or "
                            "fewer, else the libraries' own default)")

    for command, helptext in (("sample", "sample from a trained model"),
                              ("eval", "evaluate a trained model on a split")):
        p = sub.add_parser(command, help=helptext)
        p.add_argument("--checkpoint", required=True, help="a checkpoint written by `minifm train`")
        if command == "sample":
            p.add_argument("--prompt", default="\n")
            p.add_argument("--max-new-tokens", type=int, default=300)
            p.add_argument("--temperature", type=float, default=0.8)
            p.add_argument("--top-k", type=int, default=None)
            p.add_argument("--seed", type=int, default=0)
            p.add_argument("--out", default=None, help="where to write an image grid (dcgan)")
        else:
            p.add_argument("--split", default="test", choices=("val", "test"))
    return parser


def task_from_checkpoint(path, load_data=True):
    """Rebuild the task a checkpoint was trained with and load its weights."""
    from .train.checkpoint import read_checkpoint
    ckpt = read_checkpoint(path)
    cfg = ckpt["config"]["task"]
    task_cls = _tasks()[cfg["name"]]
    task = task_cls.from_config(cfg, out_dir=ckpt["config"]["trainer"]["out_dir"],
                                load_data=load_data)
    for name, module in task.modules.items():
        module.load_state_dict(ckpt["modules"][name])
    task.load_data_state(ckpt["data"])  # e.g. which phase a two-phase task was in
    return task, ckpt


def limit_threads(threads):
    """Set the BLAS and Numba thread counts of this process; returns the count used.

    With no request, a machine of 2 cores or fewer gets 1 thread: there, two OpenBLAS
    threads lose to one as soon as anything else runs (a GPT step measured 632 ms with two
    threads and 56 ms with one while another process used a core). threadpoolctl, which
    scikit-learn installs, does the BLAS part; without it the BLAS default stays.
    """
    if threads is None:
        if (os.cpu_count() or 1) > 2:
            return None
        threads = 1
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(threads)
    except ImportError:
        print("minifm: threadpoolctl is not installed; the BLAS thread count is unchanged",
              file=sys.stderr)
    if importlib.util.find_spec("numba") is not None:
        from . import kernels
        kernels.set_num_threads(threads)
    return threads


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.command == "train":
        limit_threads(args.threads)
        task_cls = _tasks()[args.task]
        train_cfg = _pick(TrainConfig, args)
        task = task_cls(_pick(task_cls.config_class, args), out_dir=train_cfg.out_dir)
        trainer = Trainer(task, train_cfg)
        if args.resume:
            trainer.resume()
            print(f"resumed from {trainer.checkpoint_path} at step {trainer.step}")
        summary = trainer.fit()
        print(json.dumps(summary, indent=2))
        for i in range(args.samples):
            print(f"--- sample {i + 1} ---")
            print(task.sample(seed=i))
        return 0 if summary["outcome"] in ("finished", "early-stopped") else 1
    task, ckpt = task_from_checkpoint(args.checkpoint, load_data=args.command == "eval")
    if args.command == "sample":
        kwargs = {"seed": args.seed}
        if task.name == "gpt":
            kwargs.update(prompt=args.prompt, max_new_tokens=args.max_new_tokens,
                          temperature=args.temperature, top_k=args.top_k)
        elif args.out:
            kwargs["path"] = args.out
        print(task.sample(**kwargs))
        return 0
    from .autograd import no_grad
    with no_grad():
        metrics = task.evaluate(args.split)
    print(json.dumps({"step": ckpt["trainer"]["step"], "split": args.split, **metrics}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
