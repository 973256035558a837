"""nanoGPT's small character-level Shakespeare run, trained by minifm and by PyTorch with one
and the same loop (minifm's API is PyTorch's, so only the imports differ).

    python benchmarks/gpt_shakespeare.py --data ../shared/data/tinyshakespeare.txt
    python benchmarks/gpt_shakespeare.py --data ... --framework torch --threads 1
    python benchmarks/gpt_shakespeare.py --data ... --seeds 1 2 3 4 5
    python benchmarks/gpt_shakespeare.py --data ... --seeds 1 2 3 --init-from-torch

The recipe is nanoGPT's config/train_shakespeare_char.py with its CPU overrides: n_layer 4,
n_head 4, n_embd 128, block 64, batch 12, dropout 0, no bias, AdamW(1e-3, betas (0.9, 0.99),
weight decay 0.1 on 2-D weights), warmup 100, cosine to 1e-4 at 2000, clip 1.0, 90/10 split.
Both frameworks draw the same training windows for a given seed (NumPy's generator) and
are evaluated on the same 200 validation batches of 12 windows. With several seeds, each
run starts from its own initialization and windows, and the summary gives the mean and
spread of the final validation loss: one run says little when seeds differ by a few
hundredths. Each framework
draws its own initial weights from its own generator; --init-from-torch starts minifm
from PyTorch's initial weights for the seed instead (copied from the model PyTorch builds
after torch.manual_seed(seed)), so that a minifm run and a PyTorch run of one seed share
weights and windows, and differ only in the engine's arithmetic. Results go to
benchmarks/results/gpt_shakespeare_<framework>[_torch_init].json.
"""
import argparse
import math
import os
import statistics
import sys
import time

import numpy as np

from common import machine_info, write_json

HERE = os.path.dirname(os.path.abspath(__file__))

parser = argparse.ArgumentParser()
parser.add_argument("--data", required=True, help="tinyshakespeare.txt")
parser.add_argument("--framework", choices=("minifm", "torch"), default="minifm")
parser.add_argument("--iters", type=int, default=2000)
parser.add_argument("--eval-interval", type=int, default=250)
parser.add_argument("--eval-iters", type=int, default=200)
parser.add_argument("--seeds", type=int, nargs="+", default=[1337])
parser.add_argument("--threads", type=int, default=None)
parser.add_argument("--output", help="default benchmarks/results/gpt_shakespeare_<framework>"
                    "[_torch_init].json")
parser.add_argument("--init-from-torch", action="store_true",
                    help="minifm only: start from PyTorch's initial weights for each seed")
args = parser.parse_args()
if args.init_from_torch and args.framework != "minifm":
    parser.error("--init-from-torch is for --framework minifm")

if args.framework == "torch":
    import torch as fw
    from torch_models import GPT, GPTConfig
    if args.threads is not None:
        fw.set_num_threads(args.threads)
else:
    import minifm as fw
    from minifm.models import GPT, GPTConfig
    if args.threads is not None:
        from minifm.runtime import limit_threads
        limit_threads(args.threads)

text = open(args.data, encoding="utf-8").read()
chars = sorted(set(text))
data = np.searchsorted(np.array(chars), np.array(list(text))).astype(np.int64)
n = int(0.9 * len(data))
train, val = data[:n], data[n:]
block, batch = 64, 12


def get_lr(it, lr=1e-3, warmup=100, decay=2000, min_lr=1e-4):
    if it < warmup:
        return lr * (it + 1) / (warmup + 1)
    if it > decay:
        return min_lr
    return min_lr + 0.5 * (1 + math.cos(math.pi * (it - warmup) / (decay - warmup))) * (lr - min_lr)


def windows(tokens, rng):
    ix = rng.integers(0, len(tokens) - block, size=batch)
    x = np.stack([tokens[i:i + block] for i in ix])
    y = np.stack([tokens[i + 1:i + 1 + block] for i in ix])
    return fw.tensor(x), fw.tensor(y)


def estimate_val_loss(model):
    model.eval()
    rng = np.random.default_rng(0)  # the same windows at every evaluation, in both frameworks
    with fw.no_grad():
        losses = [model(*windows(val, rng))[1].item() for _ in range(args.eval_iters)]
    model.train()
    return float(np.mean(losses))


def torch_initial_weights(seed, config):
    """The initial weights PyTorch's GPT gets for this seed, as NumPy arrays."""
    import torch
    import torch_models
    torch.manual_seed(seed)
    reference = torch_models.GPT(torch_models.GPTConfig(**config))
    return {name: value.numpy() for name, value in reference.state_dict().items()}


def train_one(seed):
    """Train from scratch with this seed; return the validation curve and the wall time."""
    config = dict(block_size=block, vocab_size=len(chars), n_layer=4, n_head=4, n_embd=128,
                  dropout=0.0, bias=False)
    fw.manual_seed(seed)
    model = GPT(GPTConfig(**config))
    if args.init_from_torch:
        model.load_state_dict(torch_initial_weights(seed, config))
    optimizer = model.configure_optimizers(0.1, 1e-3, (0.9, 0.99))
    rng = np.random.default_rng(seed)
    curve, t0 = [], time.perf_counter()
    for it in range(args.iters + 1):
        if it % args.eval_interval == 0 or it == args.iters:
            curve.append((it, estimate_val_loss(model)))
            print(f"{args.framework} seed {seed} iter {it}: val loss {curve[-1][1]:.4f} "
                  f"({time.perf_counter() - t0:.0f} s)", flush=True)
        if it == args.iters:
            break
        for group in optimizer.param_groups:
            group["lr"] = get_lr(it)
        _, loss = model(*windows(train, rng))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        fw.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
    return {"seed": seed, "final_val_loss": curve[-1][1], "val_curve": curve,
            "wall_seconds": round(time.perf_counter() - t0, 1)}


runs = [train_one(seed) for seed in args.seeds]
finals = [run["final_val_loss"] for run in runs]
result = {"framework": args.framework, "init_from_torch": args.init_from_torch,
          "iters": args.iters, "threads": args.threads, "machine": machine_info(),
          "mean_final_val_loss": statistics.mean(finals),
          "stdev_final_val_loss": statistics.stdev(finals) if len(finals) > 1 else None,
          "runs": runs}
name = f"gpt_shakespeare_{args.framework}{'_torch_init' if args.init_from_torch else ''}.json"
write_json(args.output or os.path.join(HERE, "results", name), result)
print(f"{args.framework}: final val loss per seed "
      + ", ".join(f"{run['seed']}: {run['final_val_loss']:.4f}" for run in runs)
      + f"; mean {result['mean_final_val_loss']:.4f}")
