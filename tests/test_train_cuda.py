"""`minifm train gpt|bert|dcgan --device cuda` and the benchmarks' --device cuda, run for a
few steps. Without a GPU, "cuda" is the CuPy stand-in (see conftest.py), which catches
host arrays left in a CUDA run; where CuPy sees a GPU, the same tests run on it."""
from __future__ import annotations

import pytest

TINY = {
    "gpt": ["--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--block-size", "16",
            "--batch-size", "4", "--eval-iters", "1"],
    "bert": ["--seq-len", "16", "--batch-size", "4", "--hidden-size", "16", "--num-layers",
             "1", "--num-heads", "2", "--intermediate-size", "32", "--eval-sequences", "8",
             "--mlm-steps", "1"],
    "dcgan": ["--image-size", "8", "--nz", "4", "--ngf", "4", "--ndf", "4", "--batch-size",
              "64", "--grid-size", "4", "--classifier-epochs", "1"],
    "resnet": ["--batch-size", "16"],
}


@pytest.mark.parametrize("device", ["cuda"])
@pytest.mark.parametrize("task", ["gpt", "bert", "dcgan", "resnet"])
def test_train_two_steps_on_cuda_then_resume_sample_and_eval(task, device, tmp_path, corpus,
                                                              capsys):
    """`minifm train TASK --device cuda`: 2 steps, a checkpoint written from CUDA tensors,
    1 more step resumed from it on CUDA, then sample and eval on CUDA."""
    from minifm.cli import main
    out = tmp_path / task
    data = ["--data", str(corpus)] if task in ("gpt", "bert") else []
    argv = ["train", task, "--out-dir", str(out), *data, *TINY[task], "--warmup-steps", "1",
            "--eval-interval", "2", "--samples", "0", "--device", device]
    assert main(argv + ["--max-steps", "2"]) == 0, capsys.readouterr().err
    assert main(["train", task, "--out-dir", str(out), "--resume", "--max-steps", "3",
                 "--device", device]) == 0, capsys.readouterr().err
    checkpoint = str(out / "checkpoint.safetensors")
    from minifm.train import read_checkpoint
    assert read_checkpoint(checkpoint)["trainer"]["step"] == 3
    capsys.readouterr()
    short = ["--max-new-tokens", "20"] if task == "gpt" else []
    assert main(["sample", "--checkpoint", checkpoint, "--device", device, *short]) == 0, \
        capsys.readouterr().err
    assert main(["eval", "--checkpoint", checkpoint, "--device", device]) == 0, \
        capsys.readouterr().err


@pytest.mark.parametrize("device", ["cuda"])
def test_bench_attention_on_cuda(device, tmp_path, capsys):
    """bench_attention.py --device cuda at a tiny size: minifm's rows with GPU memory
    peaks; the rows it cannot measure here are left out with the reason."""
    import json

    import bench_attention
    import torch
    from minifm import kernels
    out = tmp_path / "attention.json"
    bench_attention.main(["--device", device, "--min-T", "16", "--max-T", "32", "--batch", "1",
                          "--heads", "2", "--head-dim", "8", "--repeats", "1", "--warmup", "0",
                          "--out", str(out)])
    report = json.loads(out.read_text())
    impls = {"minifm reference"}
    impls |= {"minifm cuda"} if "cuda" in kernels.available_backends("attention") else set()
    impls |= {"torch"} if torch.cuda.is_available() else set()
    assert {r["impl"] for r in report["results"]} == impls
    assert len(report["results"]) == 4 * len(impls)          # 2 lengths x causal or not
    for row in report["results"]:
        assert row["forward_ms"] > 0 and row["gpu_peak_extra_mib"] > 0
    assert report["machine"]["gpu"] and report["numba_first_call"] is None
    assert "left out:" in capsys.readouterr().out or len(impls) == 3


def test_without_cupy_cuda_is_refused_in_one_line(tmp_path, corpus, capsys, monkeypatch):
    """What a machine without CuPy says (test_cli.py's refusal test skips wherever CUDA
    works, the stand-in included)."""
    import sys

    from minifm.cli import main
    monkeypatch.setitem(sys.modules, "cupy", None)   # `import cupy` raises ImportError
    out = tmp_path / "run"
    code = main(["train", "gpt", "--data", str(corpus), "--out-dir", str(out), *TINY["gpt"],
                 "--device", "cuda"])
    err = capsys.readouterr().err
    assert code == 2 and "device 'cuda' needs CuPy and a CUDA GPU" in err, err
    assert not out.exists()


@pytest.mark.parametrize("device", ["cuda"])
@pytest.mark.parametrize("bench, model", [("bench_train_gpt", "small"),
                                          ("bench_train_vision", "dcgan")])
def test_training_benchmarks_minifm_worker_on_cuda(bench, model, device, capsys, monkeypatch):
    """The minifm side of bench_train_gpt.py and bench_train_vision.py --device cuda: one
    timed step, synchronized, with the GPU memory peak (the PyTorch side needs a GPU)."""
    import importlib
    import json
    module = importlib.import_module(bench)
    monkeypatch.setattr(module, "limit_threads", lambda *args: None)  # the suite's threads
    module.run_worker("minifm", model, 1, 0, 1, device=device)
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["device"] == device and result["config"] == model
    assert result["gpu_peak_mb"] > result["gpu_base_mb"] and result["times_s"][0] > 0
