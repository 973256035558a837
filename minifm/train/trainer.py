"""The training loop: steps, evaluation, early stopping, checkpoints, resume, Ctrl-C.

The Trainer knows nothing about what it trains: a *task* (tasks/base.py states the
contract) owns the models, optimizers and data. One general loop then serves a language
model (one optimizer) and a GAN (discriminator, then generator) alike.
"""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict

from .. import distributed as dist
from .. import runtime
from ..autograd import no_grad
from ..creation import tensor
from ..nn.parallel import all_reduce_gradients, broadcast_module
from ..nn.utils import clip_grad_norm_
from ..optim.lr_scheduler import LambdaLR
from .checkpoint import read_checkpoint, restore, save_checkpoint
from .config import TrainConfig
from .metrics import MetricsLog, plot_losses
from .progress import Progress
from .run_folder import write_atomically
from .schedule import WarmupCosine
from .settings import ConfigError

BEST_CHECKPOINT = "best.safetensors"


class NonFiniteLoss(RuntimeError):
    pass


class Silent:
    """The metrics log and progress of ranks other than 0: rank 0 writes for them all."""

    def log(self, *args, **kwargs):
        pass

    write = update = close = log


class StopRun(Exception):
    """Raised by an `on_evaluate` callback to end a run that is not worth finishing (a
    hyperparameter search's pruner does): fit() stops with outcome "pruned"."""


class Trainer:
    """Trains `task` as `config` says; `log` receives the lines meant for the user.

    on_evaluate(step, metrics), if given, is called after every validation (and the
    checkpoint it writes) with the validation metrics; it may raise StopRun. With
    evaluate_test=False the test split is left untouched at the end of fit(), for a
    search that must look at the test split only once, for its best run.
    """

    def __init__(self, task, config: TrainConfig, log=print, on_evaluate=None,
                 evaluate_test=True):
        self.metric = config.early_stopping_metric or task.val_metrics[0]
        if self.metric not in task.val_metrics:
            raise ConfigError("TrainConfig", f"early_stopping_metric={self.metric!r} must be "
                              f"one of {', '.join(map(repr, task.val_metrics))} for the "
                              f"{task.name} task", "early_stopping_metric")
        self.task, self.config, self.log = task, config, log
        self.on_evaluate, self.evaluate_test = on_evaluate, evaluate_test
        decay = config.lr_decay_steps or config.max_steps
        self.schedule = WarmupCosine(config.warmup_steps, max(decay, config.warmup_steps),
                                     config.min_lr_ratio)
        self.schedulers = {name: LambdaLR(opt, self.schedule)
                           for name, opt in task.optimizers.items()}
        self.step = 0
        self.best = math.inf
        self.best_label = self.metric  # the metric's name when it was best
        self.evals_without_improvement = 0
        self.skipped_steps = 0
        # Data parallelism (under mpiexec): each rank trains on its share of every batch,
        # the gradients are averaged, and rank 0 alone writes the run's files.
        self.rank, self.world_size = ((dist.get_rank(), dist.get_world_size())
                                      if dist.is_initialized() else (0, 1))
        for module in task.modules.values() if self.world_size > 1 else ():
            broadcast_module(module)

    # ------------------------------------------------------------------ checkpoints
    @property
    def checkpoint_path(self):
        return os.path.join(self.config.out_dir, self.config.checkpoint_name)

    def save(self, path=None):
        if self.rank != 0:
            return
        save_checkpoint(
            path or self.checkpoint_path,
            config={"task": self.task.config, "trainer": asdict(self.config)},
            modules=self.task.modules, optimizers=self.task.optimizers,
            schedulers=self.schedulers,
            trainer={"step": self.step, "best": self.best, "best_label": self.best_label,
                     "skipped_steps": self.skipped_steps,
                     "evals_without_improvement": self.evals_without_improvement},
            data=self.task.data_state())

    def resume(self, checkpoint=None):
        """Continue from a checkpoint (a path, or a dict read_checkpoint returned; by
        default this run's own): the next step is exactly the one a run that never stopped
        would have taken (same weights, optimizer moments, lr, batches, RNG)."""
        ckpt = checkpoint if isinstance(checkpoint, dict) else read_checkpoint(
            checkpoint or self.checkpoint_path)
        restore(ckpt, modules=self.task.modules, optimizers=self.task.optimizers,
                schedulers=self.schedulers)
        self.task.load_data_state(ckpt["data"])
        state = ckpt["trainer"]
        self.step, self.best = state["step"], state["best"]
        self.best_label = state.get("best_label", self.best_label)
        self.skipped_steps = state["skipped_steps"]
        self.evals_without_improvement = state["evals_without_improvement"]
        return self

    # ------------------------------------------------------------------ one step
    def train_step(self):
        """One step of every optimizer; returns the train metrics (or None if skipped)."""
        batch = shard(self.task.next_batch(), self.rank, self.world_size)
        metrics = {}
        for name, opt in self.task.optimizers.items():
            opt.zero_grad(set_to_none=True)
            loss, values = self.task.loss(name, batch)
            loss_value, *rest = mean_over_ranks([float(loss.item()), *values.values()])
            values = dict(zip(values, rest))
            if not math.isfinite(loss_value):
                return self._non_finite(f"{name} loss is {loss_value}")
            loss.backward()
            params = [p for group in opt.param_groups for p in group["params"]]
            if self.world_size > 1:
                all_reduce_gradients(params)
            if self.config.grad_clip:
                norm = float(clip_grad_norm_(params, self.config.grad_clip).item())
                if not math.isfinite(norm):
                    return self._non_finite(f"{name} gradient norm is {norm}")
                values[f"{name}_grad_norm" if len(self.task.optimizers) > 1 else "grad_norm"] = norm
            opt.step()
            metrics.update(values)
        for sched in self.schedulers.values():
            sched.step()
        return metrics

    def _non_finite(self, what):
        if self.config.nan_policy == "stop":
            raise NonFiniteLoss(f"step {self.step}: {what}; stopping (use nan_policy='skip' "
                                "to skip such steps instead)")
        self.skipped_steps += 1
        self.log(f"step {self.step}: {what}; step skipped ({self.skipped_steps} so far)")
        for sched in self.schedulers.values():
            sched.step()
        return None

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, split="val"):
        with no_grad():
            values = self.task.evaluate(split)
        return dict(zip(values, mean_over_ranks(list(values.values()))))

    def _evaluate_and_checkpoint(self, metrics_log, progress):
        values = self.evaluate("val")
        metrics_log.log(self.step, "val", values)
        progress.write(f"step {self.step}: " + ", ".join(
            f"val {self.task.metric_label(k)} {v:.4f}" for k, v in values.items()))
        score = values.get(self.metric, math.nan)
        if score < self.best:
            self.best, self.best_label = score, self.task.metric_label(self.metric)
            self.evals_without_improvement = 0
            if self.step > 0:
                self.save(os.path.join(self.config.out_dir, BEST_CHECKPOINT))
        else:
            self.evals_without_improvement += 1
        self.save()
        if self.on_evaluate is not None:
            self.on_evaluate(self.step, values)
        patience = self.config.early_stopping_patience
        return patience is not None and self.evals_without_improvement >= patience

    # ------------------------------------------------------------------ the loop
    def fit(self):
        """Train to max_steps (or early stopping, a non-finite loss, Ctrl-C); returns the
        summary, also written to summary.json in the run folder."""
        cfg = self.config
        os.makedirs(cfg.out_dir, exist_ok=True)
        metrics_log, progress = Silent(), Silent()
        if self.rank == 0:
            metrics_log = MetricsLog(cfg.out_dir, keep_until=self.step if self.step > 0 else None)
            progress = Progress(cfg.max_steps, start=self.step, log_every=cfg.log_interval,
                                items_per_step=self.task.items_per_step,
                                item_name=self.task.item_name)
        if self.step < cfg.max_steps and runtime.kernels_need_compiling():
            progress.write("compiling the Numba kernels: the first steps take about half a "
                           "minute longer, once on this machine (the ETA leaves them out)")
        outcome = "finished"
        t0 = time.perf_counter()
        try:
            if self.step == 0 and self._evaluate_and_checkpoint(metrics_log, progress):
                outcome = "early-stopped"
            while outcome == "finished" and self.step < cfg.max_steps:
                metrics = self.train_step()
                self.step += 1
                if metrics is not None:
                    lr = next(iter(self.schedulers.values())).get_last_lr()[0]
                    if self.step % cfg.log_interval == 0:
                        metrics_log.log(self.step, "train", {**metrics, "lr": lr})
                    progress.update(self.step, " ".join(
                        f"{k} {v:.4f}" for k, v in metrics.items() if "norm" not in k))
                if self.step % cfg.eval_interval == 0 or self.step == cfg.max_steps:
                    if self._evaluate_and_checkpoint(metrics_log, progress):
                        progress.write(f"early stopping: no improvement of val "
                                       f"{self.metric} in "
                                       f"{cfg.early_stopping_patience} evaluations")
                        outcome = "early-stopped"
        except KeyboardInterrupt:
            self.save()
            progress.write(f"interrupted at step {self.step}: checkpoint saved to "
                           f"{self.checkpoint_path}; rerun with --resume to continue")
            outcome = "interrupted"
        except NonFiniteLoss as err:
            progress.write(str(err))
            outcome = "stopped-non-finite"
        except StopRun as err:
            progress.write(f"stopped at step {self.step}: {err}")
            outcome = "pruned"
        finally:
            progress.close()
            metrics_log.close()
        best_path = os.path.join(cfg.out_dir, BEST_CHECKPOINT)
        summary = {"outcome": outcome, "steps": self.step,
                   "best_val": {"metric": self.best_label, "value": self.best,
                                "checkpoint": best_path if os.path.exists(best_path) else None},
                   "skipped_steps": self.skipped_steps,
                   "wall_seconds": round(time.perf_counter() - t0, 2)}
        if outcome in ("finished", "early-stopped"):
            if self.evaluate_test:
                summary["test"] = self.evaluate("test")
            if self.rank == 0:
                summary["loss_plot"] = plot_losses(cfg.out_dir,
                                                   title=self.task.config.get("name"))
        if self.rank == 0:
            write_atomically(os.path.join(cfg.out_dir, "summary.json"), json.dumps(summary, indent=2))
        return summary


def shard(batch, rank, world_size):
    """This rank's rows of every tensor in `batch` (tensors, in any nesting of tuples,
    lists and dicts; other values pass unchanged): rows rank*n/N to (rank+1)*n/N. Every
    rank draws the same global batch, so the run follows one process's batches, and a
    resumed run may have another world size."""
    if world_size == 1:
        return batch
    if isinstance(batch, (tuple, list)):
        return type(batch)(shard(b, rank, world_size) for b in batch)
    if isinstance(batch, dict):
        return {k: shard(v, rank, world_size) for k, v in batch.items()}
    if not hasattr(batch, "shape"):
        return batch
    n = batch.shape[0]
    if n % world_size:
        raise ValueError(f"a batch of {n} does not split evenly over {world_size} ranks: "
                         "choose a batch size divisible by the number of processes")
    return batch[rank * n // world_size:(rank + 1) * n // world_size]


def mean_over_ranks(values):
    """The mean of each number in `values` over all ranks (the list itself in one process):
    the global batch's loss, and evaluations, the same on every rank."""
    if not values or not dist.is_initialized() or dist.get_world_size() == 1:
        return values
    t = tensor(values, dtype="float64")
    dist.all_reduce(t, op=dist.ReduceOp.AVG)
    return t.tolist()
