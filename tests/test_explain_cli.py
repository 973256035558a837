"""`minifm explain` on tiny checkpoints trained for two steps: the pictures it promises
are written as PNGs, and a user's mistake is one plain line and exit code 2."""
from __future__ import annotations

import pytest

pytest.importorskip("matplotlib")

from minifm.cli import main  # noqa: E402
from test_cli import TINY_GPT, refused  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"


def pngs(folder):
    files = sorted(p.name for p in folder.iterdir())
    assert files and all((folder / f).read_bytes().startswith(PNG) for f in files)
    return files


def test_explain_gpt_writes_attention_rollout_and_attributions(tmp_path, corpus, capsys):
    run = tmp_path / "gpt"
    assert main(["train", "gpt", "--data", str(corpus), "--out-dir", str(run),
                 *TINY_GPT[:-6], "--max-steps", "2", "--samples", "0"]) == 0
    checkpoint = str(run / "checkpoint.safetensors")
    capsys.readouterr()
    out = tmp_path / "pictures"
    assert main(["explain", "--checkpoint", checkpoint, "--text", "the lazy dog",
                 "--out", str(out), "--steps", "4"]) == 0
    assert capsys.readouterr().out.split() == [str(out / f) for f in (
        "gpt_attention_layer0.png", "gpt_rollout.png", "gpt_token_attributions.png")]
    assert pngs(out) == ["gpt_attention_layer0.png", "gpt_rollout.png",
                         "gpt_token_attributions.png"]

    refused(capsys, ["explain", "--checkpoint", checkpoint], "needs a --text")
    refused(capsys, ["explain", "--checkpoint", checkpoint, "--text", "\u00e9t\u00e9"],
            "cannot be encoded")
    refused(capsys, ["explain", "--checkpoint", str(tmp_path / "none.safetensors"),
                     "--text", "x"], "none.safetensors")


def test_explain_bert_and_dcgan(tmp_path, corpus, capsys):
    bert = tmp_path / "bert"
    assert main(["train", "bert", "--data", str(corpus), "--out-dir", str(bert),
                 "--seq-len", "16", "--batch-size", "4", "--hidden-size", "16",
                 "--num-layers", "1", "--num-heads", "2", "--intermediate-size", "32",
                 "--eval-sequences", "8", "--mlm-steps", "2", "--max-steps", "2",
                 "--eval-interval", "2", "--samples", "0"]) == 0
    assert main(["explain", "--checkpoint", str(bert / "checkpoint.safetensors"),
                 "--text", "the [MASK]azy dog", "--out", str(tmp_path / "b"),
                 "--steps", "4"]) == 0
    assert pngs(tmp_path / "b") == ["bert_attention_layer0.png", "bert_rollout.png",
                                    "bert_token_attributions.png"]
    refused(capsys, ["explain", "--checkpoint", str(bert / "checkpoint.safetensors"),
                     "--text", "x" * 20], "reads at most 14")

    gan = tmp_path / "gan"
    assert main(["train", "dcgan", "--out-dir", str(gan), "--image-size", "8", "--nz", "4",
                 "--ngf", "4", "--ndf", "4", "--batch-size", "64", "--grid-size", "4",
                 "--classifier-epochs", "1", "--max-steps", "2", "--eval-interval", "2",
                 "--samples", "0"]) == 0
    assert main(["explain", "--checkpoint", str(gan / "checkpoint.safetensors"),
                 "--out", str(tmp_path / "d"), "--steps", "4"]) == 0
    assert pngs(tmp_path / "d") == ["dcgan_discriminator_generated.png",
                                    "dcgan_discriminator_real.png"]


def test_explain_resnet_writes_gradcam(tmp_path, capsys):
    run = tmp_path / "resnet"
    assert main(["train", "resnet", "--out-dir", str(run), "--batch-size", "32",
                 "--augment", "none", "--max-steps", "1", "--eval-interval", "1",
                 "--samples", "0"]) == 0
    assert main(["explain", "--checkpoint", str(run / "checkpoint.safetensors"),
                 "--out", str(tmp_path / "r"), "--steps", "4"]) == 0
    assert pngs(tmp_path / "r") == ["resnet_gradcam.png"]
