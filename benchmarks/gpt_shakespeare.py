"""nanoGPT's small character-level Shakespeare run, trained by minifm and by PyTorch with one
and the same loop (minifm's API is PyTorch's, so only the imports differ).

    python benchmarks/gpt_shakespeare.py --data ../shared/data/tinyshakespeare.txt
    python benchmarks/gpt_shakespeare.py --data ... --framework torch

The recipe is nanoGPT's config/train_shakespeare_char.py with its CPU overrides: n_layer 4,
n_head 4, n_embd 128, block 64, batch 12, dropout 0, no bias, AdamW(1e-3, betas (0.9, 0.99),
weight decay 0.1 on 2-D weights), warmup 100, cosine to 1e-4 at 2000, clip 1.0, 90/10 split.
Both frameworks draw the same training windows (NumPy's generator, seeded) and are
evaluated on the same 200 validation windows. Results go to
benchmarks/results/gpt_shakespeare_<framework>.json.
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))

parser = argparse.ArgumentParser()
parser.add_argument("--data", required=True, help="tinyshakespeare.txt")
parser.add_argument("--framework", choices=("minifm", "torch"), default="minifm")
parser.add_argument("--iters", type=int, default=2000)
parser.add_argument("--eval-interval", type=int, default=250)
parser.add_argument("--eval-iters", type=int, default=200)
parser.add_argument("--seed", type=int, default=1337)
parser.add_argument("--threads", type=int, default=None)
args = parser.parse_args()

if args.framework == "torch":
    import torch as fw
    sys.path.insert(0, os.path.join(HERE, "..", "tests"))
    from torch_models import GPT, GPTConfig
    if args.threads:
        fw.set_num_threads(args.threads)
else:
    import minifm as fw
    from minifm.models import GPT, GPTConfig

text = open(args.data, encoding="utf-8").read()
chars = sorted(set(text))
data = np.searchsorted(np.array(chars), np.array(list(text))).astype(np.int64)
n = int(0.9 * len(data))
train, val = data[:n], data[n:]
block, batch = 64, 12

fw.manual_seed(args.seed)
model = GPT(GPTConfig(block_size=block, vocab_size=len(chars), n_layer=4, n_head=4, n_embd=128,
                      dropout=0.0, bias=False))
optimizer = model.configure_optimizers(0.1, 1e-3, (0.9, 0.99))


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


def estimate_val_loss():
    model.eval()
    rng = np.random.default_rng(0)  # the same windows at every evaluation, in both frameworks
    with fw.no_grad():
        losses = [model(*windows(val, rng))[1].item() for _ in range(args.eval_iters)]
    model.train()
    return float(np.mean(losses))


rng = np.random.default_rng(args.seed)
curve, t0 = [], time.perf_counter()
for it in range(args.iters + 1):
    if it % args.eval_interval == 0:
        curve.append((it, estimate_val_loss()))
        print(f"{args.framework} iter {it}: val loss {curve[-1][1]:.4f} "
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

result = {"framework": args.framework, "iters": args.iters, "seed": args.seed,
          "final_val_loss": curve[-1][1], "val_curve": curve,
          "wall_seconds": round(time.perf_counter() - t0, 1)}
os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
with open(os.path.join(HERE, "results", f"gpt_shakespeare_{args.framework}.json"), "w") as f:
    json.dump(result, f, indent=2)
print(json.dumps(result))
