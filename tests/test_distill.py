"""Knowledge distillation: the soft-target loss equals Hinton et al.'s formula computed by
PyTorch, and `minifm train gpt --distill-from` trains a student on a teacher's
checkpoint (alpha = 0 is exactly the student trained alone; the teacher is frozen)."""
import json

import numpy as np
import pytest

import minifm
from minifm.cli import main
from minifm.train.distill import load_teacher, soft_target_loss

TINY = ["--n-head", "2", "--block-size", "16", "--batch-size", "4", "--eval-iters", "2",
        "--warmup-steps", "1", "--eval-interval", "3", "--max-steps", "3", "--log-interval", "1", "--samples", "0"]


def test_soft_target_loss_equals_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    student, teacher = (rng.standard_normal((6, 10)).astype(np.float32) for _ in range(2))
    temperature = 3.0
    s = minifm.tensor(student, requires_grad=True)
    loss = soft_target_loss(s, minifm.tensor(teacher), temperature)
    loss.backward()
    ts = torch.tensor(student, requires_grad=True)
    expected = torch.nn.functional.kl_div(
        torch.log_softmax(ts / temperature, -1), torch.softmax(torch.tensor(teacher) / temperature, -1),
        reduction="batchmean") * temperature ** 2
    expected.backward()
    np.testing.assert_allclose(loss.item(), expected.item(), rtol=1e-5)
    np.testing.assert_allclose(s.grad.numpy(), ts.grad.numpy(), rtol=1e-4, atol=1e-7)


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    folder = tmp_path_factory.mktemp("distill")
    corpus = folder / "corpus.txt"
    corpus.write_text("".join(f"line {i}: the quick brown fox jumps over the lazy dog.\n"
                              for i in range(200)), encoding="utf-8")
    out = folder / "teacher"
    assert main(["train", "gpt", "--data", str(corpus), "--out-dir", str(out), "--n-layer",
                 "2", "--n-embd", "32", *TINY]) == 0
    return corpus, out / "checkpoint.safetensors"


def train_student(corpus, out, *extra):
    assert main(["train", "gpt", "--data", str(corpus), "--out-dir", str(out), "--n-layer",
                 "1", "--n-embd", "16", *TINY, *extra]) == 0
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def _losses(rows):
    return [row["loss"] for row in rows if "loss" in row]


def test_alpha_zero_is_the_student_alone(teacher, tmp_path):
    corpus, checkpoint = teacher
    alone = train_student(corpus, tmp_path / "alone")
    distilled = train_student(corpus, tmp_path / "zero", "--distill-from", str(checkpoint),
                              "--distill-alpha", "0")
    assert _losses(alone) == _losses(distilled)


def test_distilled_student_learns_from_the_teacher(teacher, tmp_path):
    corpus, checkpoint = teacher
    before = {k: v.numpy().copy() for k, v in load_teacher(checkpoint)[0].state_dict().items()}
    alone = train_student(corpus, tmp_path / "alone")
    distilled = train_student(corpus, tmp_path / "kd", "--distill-from", str(checkpoint),
                              "--distill-alpha", "0.9", "--distill-temperature", "4")
    assert _losses(alone) != _losses(distilled)
    assert any("distill_kl" in row for row in distilled)
    after = load_teacher(checkpoint)[0].state_dict()
    assert all(np.array_equal(before[k], after[k].numpy()) for k in before)  # frozen


def test_distillation_refuses_bad_settings(teacher, tmp_path, capsys):
    corpus, checkpoint = teacher
    base = ["train", "gpt", "--data", str(corpus), "--n-layer", "1", "--n-embd", "16", *TINY]
    assert main([*base, "--out-dir", str(tmp_path / "a"), "--distill-from", str(checkpoint),
                 "--distill-alpha", "1.5"]) == 2
    assert main([*base, "--out-dir", str(tmp_path / "b"), "--distill-from", str(checkpoint),
                 "--block-size", "32"]) == 2
    assert main([*base, "--out-dir", str(tmp_path / "c"), "--distill-from",
                 str(tmp_path / "missing.safetensors")]) == 2
    err = capsys.readouterr().err
    assert "distill-alpha" in err and "block_size" in err
