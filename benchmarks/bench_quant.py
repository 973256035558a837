"""Int8 dynamic quantization on the CPU: minifm beside float32 BLAS and beside PyTorch.

Part 1, one Linear layer at GPT shapes (rows = batch x time, in -> out features), forward
only, one thread, sides taking turns, median of repeats of a loop of calls:

    float32 BLAS        minifm's nn.Linear (NumPy matmul on OpenBLAS)
    minifm int8         DynamicQuantizedLinear: quantize the batch, Numba int8 kernel,
                        rescale (and the kernel alone, and its NumPy reference)
    torch float32       torch.nn.Linear (MKL / oneDNN)
    torch int8          torch.ao.quantization.quantize_dynamic's Linear (fbgemm)

Part 2, generation with a GPT (the checkpoint given, else the default task's shape with
random weights), every Linear but the output layer quantized: tokens/s of `generate` (KV
cache, batch 1) and the bytes of the weights,
float32 beside weight-only int8 (int8 weights, dequantized a tile at a time) and beside
dynamic int8, and the validation-style loss of each on the checkpoint's own data when
there is a checkpoint.

    python benchmarks/bench_quant.py [--checkpoint /tmp/gpt_main/checkpoint.safetensors]
        [--repeats 7] [--out benchmarks/results/compress/bench_quant.json]
"""
from __future__ import annotations

import argparse
import os
import sys
import time

for _var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("NUMBA_THREADING_LAYER", "workqueue")

import numba  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch.ao.quantization import per_channel_dynamic_qconfig  # noqa: E402
from torch.ao.quantization import quantize_dynamic as torch_quantize_dynamic  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import minifm  # noqa: E402
import minifm.nn as nn  # noqa: E402
from benchmarks.common import machine_info, median, time_interleaved, write_json  # noqa: E402
from minifm.models.gpt import GPT, GPTConfig  # noqa: E402
from minifm.quantization import (  # noqa: E402
    DynamicQuantizedLinear, int8_matmul, int8_matmul_reference, quantize_activation,
    quantize_dynamic, quantize_weight_only,
)
from minifm.train.commands import task_from_checkpoint  # noqa: E402
from minifm.train.tasks.gpt import generate_text  # noqa: E402

# (rows, in, out): the default GPT's layers in training/evaluation (12 x 64 rows), its
# generation (1 row), and a GPT-2-small MLP layer
SHAPES = ((768, 128, 384), (768, 512, 128), (1, 128, 512), (1, 512, 128), (256, 768, 3072))
GENERATED = 200


def loop(fn, seconds=0.05):
    """fn wrapped to run enough times for a measurable interval; returns (wrapped, calls)."""
    fn()
    start, calls = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        fn()
        calls += 1
    calls = max(calls, 1)
    return (lambda: [fn() for _ in range(calls)]), calls


def bench_linear(rows, k, n, repeats):
    """ms per forward of each side for one Linear shape."""
    minifm.manual_seed(0)
    linear = nn.Linear(k, n)
    qlinear = DynamicQuantizedLinear.from_float(linear)
    x = minifm.randn(rows, k)
    tlinear = torch.nn.Linear(k, n)
    tlinear.weight.data = torch.from_numpy(linear.weight.detach().numpy().copy())
    tlinear.bias.data = torch.from_numpy(linear.bias.detach().numpy().copy())
    tq = torch_quantize_dynamic(torch.nn.Sequential(tlinear),
                                {torch.nn.Linear: per_channel_dynamic_qconfig})
    tx = torch.from_numpy(x.numpy().copy())
    q, _, zero = quantize_activation(x.numpy())
    w = qlinear.weight.numpy()
    sides = {
        "float32 BLAS": lambda: linear(x),
        "minifm int8": lambda: qlinear(x),
        "int8 kernel alone": lambda: int8_matmul(q, zero, w),
        "int8 NumPy reference": lambda: int8_matmul_reference(q, zero, w),
        "torch float32": lambda: tlinear(tx),
        "torch int8": lambda: tq(tx),
    }
    with minifm.no_grad(), torch.no_grad():
        wrapped, calls = {}, {}
        for name, fn in sides.items():
            wrapped[name], calls[name] = loop(fn)
        samples = time_interleaved(wrapped, repeats=repeats, warmup=0)
    return {name: median(s) / calls[name] * 1e3 for name, s in samples.items()}


def weight_bytes(model):
    return sum(t.numpy().nbytes for t in model.state_dict().values())


def bench_generation(checkpoint, repeats):
    """tokens/s, weight bytes and (with a checkpoint) validation loss of float32,
    weight-only int8 and dynamic int8 GPTs."""
    task = None
    if checkpoint:
        task, _ = task_from_checkpoint(checkpoint, load_data=True)
        model, tokenizer = task.model, task.tokenizer
    else:
        minifm.manual_seed(0)
        model = GPT(GPTConfig(block_size=64, vocab_size=100, n_layer=4, n_head=4, n_embd=128,
                              bias=False))
        tokenizer = None
    # every Linear but the output layer, which shares its weight with the token embedding
    # (as `minifm compress` does; GPT's KV cache also takes its dtype from that weight)
    body = {name for name, m in model.named_modules() if type(m) is nn.Linear
            and name != "lm_head"}
    models = {"float32": model,
              "weight-only int8": quantize_weight_only(model, body),
              "dynamic int8": quantize_dynamic(model, body)}

    def generate(m):
        if tokenizer is not None:
            return lambda: generate_text(m, tokenizer, "\n", GENERATED)
        idx = minifm.zeros(1, 1, dtype=minifm.int64)
        return lambda: m.eval().generate(idx, GENERATED, generator=minifm.Generator(seed=0))

    with minifm.no_grad():
        samples = time_interleaved({name: generate(m) for name, m in models.items()},
                                   repeats=repeats, warmup=1)
    result = {}
    for name, m in models.items():
        result[name] = {"tokens_per_s": GENERATED / median(samples[name]),
                        "weight_bytes": weight_bytes(m)}
        if task is not None:
            task.model = m
            with minifm.no_grad():
                result[name]["val_loss"] = task.evaluate("val")["loss"]
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=None, help="a `minifm train gpt` checkpoint")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", default="benchmarks/results/compress/bench_quant.json")
    args = parser.parse_args()
    numba.set_num_threads(1)
    torch.set_num_threads(1)

    print("One Linear, forward, ms (median; 1 thread)")
    names = None
    linear = []
    for rows, k, n in SHAPES:
        times = bench_linear(rows, k, n, args.repeats)
        if names is None:
            names = list(times)
            print(f"{'rows x in -> out':>20} " + " ".join(f"{h:>20}" for h in names))
        print(f"{f'{rows} x {k} -> {n}':>20} " + " ".join(f"{times[h]:>20.3f}" for h in names))
        linear.append({"rows": rows, "in": k, "out": n, "ms": times})

    print(f"\nGPT generation ({GENERATED} tokens, batch 1, KV cache)")
    generation = bench_generation(args.checkpoint, max(3, args.repeats // 2))
    print(f"{'model':>18} {'tokens/s':>10} {'weight MiB':>11} {'val loss':>9}")
    for name, r in generation.items():
        loss = f"{r['val_loss']:.4f}" if "val_loss" in r else "-"
        print(f"{name:>18} {r['tokens_per_s']:>10.1f} {r['weight_bytes'] / 2**20:>11.3f} "
              f"{loss:>9}")
    print("wrote", write_json(args.out, {"machine": machine_info(), "linear": linear,
                                         "generation": generation,
                                         "checkpoint": args.checkpoint}))


if __name__ == "__main__":
    main()
