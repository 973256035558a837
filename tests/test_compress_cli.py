"""`minifm compress` on tiny GPT and BERT runs: the report's numbers are consistent with
what was asked (sparsity, int8 weights, file sizes), the compressed checkpoint loads in
`minifm eval` and `minifm sample`, and bad requests are refused in one line."""
import json

import numpy as np
import pytest

import minifm
from minifm.cli import main

TINY_GPT = ["--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--block-size", "16",
            "--batch-size", "4", "--eval-iters", "1", "--warmup-steps", "1",
            "--eval-interval", "2", "--max-steps", "4", "--samples", "0"]
TINY_BERT = ["--seq-len", "16", "--batch-size", "4", "--hidden-size", "16", "--num-layers",
             "1", "--num-heads", "2", "--intermediate-size", "32", "--eval-sequences", "8",
             "--mlm-steps", "3", "--max-steps", "6", "--eval-interval", "3", "--samples", "0"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("compress")
    corpus = folder / "corpus.txt"
    corpus.write_text("".join(f"line {i}: the quick brown fox jumps over the lazy dog.\n"
                              for i in range(200)), encoding="utf-8")
    for task, options in (("gpt", TINY_GPT), ("bert", TINY_BERT)):
        assert main(["train", task, "--data", str(corpus), "--out-dir", str(folder / task),
                     *options]) == 0
    return folder


def compress(runs, task, out, *options):
    assert main(["compress", "--checkpoint", str(runs / task / "checkpoint.safetensors"),
                 "--out", str(out), *options]) == 0
    return json.loads(out.with_suffix(".json").read_text())


def test_gpt_pruned_finetuned_and_quantized(runs, tmp_path, capsys):
    out = tmp_path / "gpt_small.safetensors"
    report = compress(runs, "gpt", out, "--prune", "0.5", "--finetune-steps", "2",
                      "--quantize", "int8")
    before, after = report["before"], report["after"]
    assert before["layer_sparsity"] == 0 and after["layer_sparsity"] >= 0.49
    assert after["weight_bytes"] < before["weight_bytes"]  # (the float embedding dominates)
    assert after["file_bytes"] < before["file_bytes"]
    assert after["generation_tokens_per_s"] > 0 and "loss" in after["val"]
    assert "layer sparsity" in capsys.readouterr().out
    state = minifm.load(out)["modules"]["model"]
    assert state["transformer.h.0.mlp.c_fc.weight"].dtype == np.int8
    assert state["transformer.wte.weight"].dtype == np.float32  # the embedding stays float
    assert main(["eval", "--checkpoint", str(out), "--split", "val"]) == 0
    assert json.loads(capsys.readouterr().out)["loss"] == pytest.approx(after["val"]["loss"])
    assert main(["sample", "--checkpoint", str(out), "--max-new-tokens", "5"]) == 0


def test_gpt_structured_pruning_zeroes_whole_output_channels(runs, tmp_path):
    out = tmp_path / "gpt_structured.safetensors"
    report = compress(runs, "gpt", out, "--prune", "0.25", "--structured")
    assert report["after"]["layer_sparsity"] == pytest.approx(0.25, abs=0.02)
    weight = minifm.load(out)["modules"]["model"]["transformer.h.0.mlp.c_fc.weight"]
    assert (np.abs(weight).sum(axis=1) == 0).sum() == round(0.25 * weight.shape[0])


def test_bert_pruned_and_quantized(runs, tmp_path, capsys):
    out = tmp_path / "bert_small.safetensors"
    report = compress(runs, "bert", out, "--prune", "0.3", "--quantize", "int8")
    assert report["after"]["layer_sparsity"] >= 0.29
    assert set(report["after"]["val"]) == set(report["before"]["val"])
    assert main(["eval", "--checkpoint", str(out), "--split", "val"]) == 0


@pytest.mark.parametrize("options, message", [
    (["--prune", "1.5"], "--prune must be a fraction"),
    (["--finetune-steps", "3"], "give --prune too"),
])
def test_bad_requests_are_refused(runs, tmp_path, capsys, options, message):
    code = main(["compress", "--checkpoint", str(runs / "gpt" / "checkpoint.safetensors"),
                 "--out", str(tmp_path / "x.safetensors"), *options])
    assert code == 2 and message in capsys.readouterr().err
