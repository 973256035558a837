"""`minifm compress`: make a trained model smaller, and measure what it cost.

    minifm compress --checkpoint runs/gpt/checkpoint.safetensors --prune 0.5
                    [--structured] [--finetune-steps 200] [--quantize int8] --out small.safetensors

In order: prune the weights of every Linear and Conv2d layer (global L1 magnitude
pruning over all of them at once, or with --structured each layer's output channels of
smallest L2 norm); fine-tune the pruned model for a few steps with the task's own
training step (the masks keep pruned weights at zero; a fresh optimizer, the task's
learning rate decayed by a cosine over the steps); make the pruning permanent
(prune.remove); quantize the Linear layers to int8 (quantize_dynamic). The result is a
training checkpoint without optimizer state, whose config records the compression, so
`minifm eval` and `minifm sample` read it as they read any checkpoint.

The report (printed, and written beside --out as JSON) puts before beside after: file
size and the bytes of the weights, parameters and their sparsity, the validation and test
metrics, the time of one validation pass, and for a GPT generation speed in tokens/s.
Zeros pruned without quantizing do not shrink the file: the weights are stored dense.
A layer whose weight it shares with another (GPT's output layer, tied to the token
embedding) is neither pruned nor quantized, so the tie holds (and the output layer,
where quantization errors would reach the logits directly, stays float32).
"""
from __future__ import annotations

import json
import os
import time

import numpy as np

from ..autograd import no_grad
from ..nn.conv import Conv2d
from ..nn.linear import Linear
from ..nn.utils import prune
from ..quantization import quantize_dynamic
from ..serialization import save
from .checkpoint import FORMAT
from .commands import task_from_checkpoint
from .config import TrainConfig
from .tasks.gpt import generate_text
from .trainer import Trainer

GENERATED_TOKENS = 200


def compress_checkpoint(checkpoint, out, prune_amount=None, structured=False,
                        finetune_steps=0, quantize=None, device="cpu", log=print):
    """Compress the model of `checkpoint` into `out`; returns the report (also written
    to `out` with the suffix .json)."""
    if prune_amount is not None and not 0 <= prune_amount < 1:
        raise ValueError(f"--prune must be a fraction in [0, 1), got {prune_amount}")
    if finetune_steps < 0:
        raise ValueError(f"--finetune-steps must be >= 0, got {finetune_steps}")
    if finetune_steps and prune_amount is None:
        raise ValueError("--finetune-steps fine-tunes a pruned model: give --prune too")
    task, ckpt = task_from_checkpoint(checkpoint, load_data=True, device=device)
    keys = weight_keys(task)
    report = {"checkpoint": os.path.abspath(checkpoint), "task": task.name,
              "prune": prune_amount, "structured": structured,
              "finetune_steps": finetune_steps, "quantize": quantize,
              "before": measure(task, checkpoint, keys)}
    layers = prunable_layers(task)
    if prune_amount is not None:
        prune_layers(layers, prune_amount, structured)
        if finetune_steps:
            log(f"fine-tuning for {finetune_steps} steps")
            finetune(task, ckpt, finetune_steps)
        for module, _ in layers:
            prune.remove(module, "weight")
    quantized = {}
    if quantize == "int8":
        quantized = untied_linear_names(task)
        for name, model in task.modules.items():
            quantize_dynamic(model, set(quantized[name]), inplace=True)
    save_compressed(task, ckpt, out, {"prune": prune_amount, "structured": structured,
                                      "finetune_steps": finetune_steps, "quantize": quantize,
                                      "quantized_layers": quantized})
    report["after"] = measure(task, out, keys)
    with open(os.path.splitext(out)[0] + ".json", "w") as f:
        json.dump(report, f, indent=2)
    return report


def _untied(task, types):
    """{model name: [(qualified name, module)]} of the task's modules of `types` whose
    weight no other module holds."""
    owners = {}
    for model in task.modules.values():
        for module in model.modules():
            for param in module._parameters.values():
                owners[id(param)] = owners.get(id(param), 0) + 1
    return {key: [(name, m) for name, m in model.named_modules()
                  if type(m) in types and owners[id(m.weight)] == 1]
            for key, model in task.modules.items()}


def prunable_layers(task):
    """(module, "weight") for every Linear and Conv2d with a weight of its own."""
    return [(m, "weight") for layers in _untied(task, (Linear, Conv2d)).values()
            for _, m in layers]


def untied_linear_names(task):
    """{model name: qualified names of its Linear layers with a weight of their own}."""
    return {key: [name for name, _ in layers]
            for key, layers in _untied(task, (Linear,)).items()}


def prune_layers(layers, amount, structured):
    """Global L1 pruning of all layers together, or per-layer L2 pruning of output
    channels (dim 0 of a Linear's or a Conv2d's weight)."""
    if structured:
        for module, name in layers:
            prune.ln_structured(module, name, amount=amount, n=2, dim=0)
    else:
        prune.global_unstructured(layers, pruning_method=prune.L1Unstructured, amount=amount)


def finetune(task, ckpt, steps):
    """`steps` of the task's training step: the Trainer's, with the run's gradient
    clipping, warmup over the first tenth and a cosine decay of the learning rate."""
    saved = ckpt["config"]["trainer"]
    config = TrainConfig(max_steps=steps, warmup_steps=steps // 10,
                         min_lr_ratio=saved["min_lr_ratio"], grad_clip=saved["grad_clip"])
    trainer = Trainer(task, config, log=lambda *_: None)
    for _ in range(steps):
        trainer.train_step()


def save_compressed(task, ckpt, out, compression):
    """A checkpoint of the compressed models, with no optimizer state to resume from."""
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    save({"format": FORMAT,
          "config": {**ckpt["config"], "compression": compression},
          "modules": {name: m.state_dict() for name, m in task.modules.items()},
          "optimizers": {}, "schedulers": {}, "trainer": ckpt["trainer"],
          "data": ckpt["data"], "rng": ckpt["rng"]}, out)


def weight_keys(task):
    """{model name: state_dict keys of the prunable layers' weights}: the same keys name
    them pruned, and quantized, so sparsity is measured on the same weights throughout."""
    return {key: [f"{name}.weight" for name, _ in layers]
            for key, layers in _untied(task, (Linear, Conv2d)).items()}


def measure(task, path, keys):
    """The sizes, sparsity (of the weights `keys` names), metrics and speed of the task's
    models as they are now. The test split is evaluated first, so that the timed
    validation pass and the timed generation run warm."""
    states = {name: model.state_dict() for name, model in task.modules.items()}
    tensors = [t.numpy() for state in states.values() for t in state.values()]
    weights = [states[name][key].numpy() for name in keys for key in keys[name]]
    total = sum(w.size for w in weights)
    result = {"file_bytes": os.path.getsize(path),
              "weight_bytes": sum(t.nbytes for t in tensors),
              "parameters": sum(t.size for t in tensors),
              "nonzero_parameters": sum(int(np.count_nonzero(t)) for t in tensors),
              "layer_sparsity": sum(int((w == 0).sum()) for w in weights) / total if total
              else 0.0}
    with no_grad():
        result["test"] = task.evaluate("test")
        start = time.perf_counter()
        result["val"] = task.evaluate("val")
        result["val_seconds"] = time.perf_counter() - start
        if task.name == "gpt":
            seconds = []
            for _ in range(2):  # the second run is timed: the first loads the kernels
                start = time.perf_counter()
                generate_text(task.model, task.tokenizer, "\n", GENERATED_TOKENS,
                              device=task.device)
                seconds.append(time.perf_counter() - start)
            result["generation_tokens_per_s"] = GENERATED_TOKENS / seconds[-1]
    return result


def describe(report):
    """The report as a short table for the terminal."""
    before, after = report["before"], report["after"]
    rows = [("file size (bytes)", "file_bytes"), ("weights (bytes)", "weight_bytes"),
            ("parameters", "parameters"), ("nonzero parameters", "nonzero_parameters"),
            ("layer sparsity", "layer_sparsity"), ("validation pass (s)", "val_seconds"),
            ("generation tokens/s", "generation_tokens_per_s")]
    lines = [f"{'':24} {'before':>14} {'after':>14}"]
    for label, key in rows:
        if key in before:
            lines.append(f"{label:24} {before[key]:>14,.4g} {after[key]:>14,.4g}")
    for split in ("val", "test"):
        for metric, value in before[split].items():
            lines.append(f"{split + ' ' + metric:24} {value:>14.4f} "
                         f"{after[split][metric]:>14.4f}")
    return "\n".join(lines)

