"""`minifm train resnet`: the shift augmentation, the fixed split, training through the
Trainer with a bit-exact resume across epochs, evaluation and the sample, the command
line. A tiny training split (91 digits: val and test take the rest) keeps steps cheap."""
from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("sklearn")

from minifm import backend  # noqa: E402
from minifm.cli import main  # noqa: E402
from minifm.train import TrainConfig, Trainer, read_checkpoint  # noqa: E402
from minifm.train.commands import task_from_checkpoint  # noqa: E402
from minifm.train.settings import ConfigError  # noqa: E402
from minifm.train.tasks import TASKS  # noqa: E402
from minifm.train.tasks.resnet import ResNetTask, ResNetTaskConfig, random_shift  # noqa: E402

TINY = dict(batch_size=45, val_frac=0.45, test_frac=0.5)  # 91 training digits: 2 batches


def shifted_by(image, dy, dx):
    """`image` (C, H, W) moved down dy and right dx, zeros shifted in."""
    out = np.zeros_like(image)
    h, w = image.shape[1:]
    out[:, max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        image[:, max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
    return out


@pytest.mark.parametrize("max_shift", [1, 2])
def test_random_shift_moves_each_image_by_its_own_offset_within_the_bound(max_shift):
    images = np.random.default_rng(0).random((200, 2, 8, 8)).astype(np.float32)
    shifted = random_shift(images, max_shift, backend.Generator(seed=0))
    assert shifted.shape == images.shape and shifted.dtype == images.dtype
    offsets = set()
    for image, out in zip(images, shifted):
        matches = [(dy, dx) for dy in range(-max_shift, max_shift + 1)
                   for dx in range(-max_shift, max_shift + 1)
                   if np.array_equal(out, shifted_by(image, dy, dx))]
        assert len(matches) == 1
        offsets.add(matches[0])
    assert len(offsets) == (2 * max_shift + 1) ** 2  # every offset is drawn
    again = random_shift(images, max_shift, backend.Generator(seed=0))
    assert np.array_equal(shifted, again)  # the generator alone decides


def test_the_split_is_fixed_whatever_the_seed(tmp_path):
    a = ResNetTask(ResNetTaskConfig(seed=1), str(tmp_path))
    b = ResNetTask(ResNetTaskConfig(seed=2), str(tmp_path))
    for split in ("train", "val", "test"):
        assert np.array_equal(a.digits[split][1], b.digits[split][1])
    assert [len(a.digits[s][1]) for s in ("train", "val", "test")] == [1439, 179, 179]


def test_config_refuses_bad_settings():
    with pytest.raises(ConfigError, match="depth=21 must be one of"):
        ResNetTaskConfig(depth=21)
    with pytest.raises(ConfigError, match="max_shift=0 must be >= 1"):
        ResNetTaskConfig(max_shift=0)


def train_config(out_dir, max_steps):
    return TrainConfig(max_steps=max_steps, eval_interval=max_steps, log_interval=1,
                       warmup_steps=1, lr_decay_steps=6, grad_clip=None, out_dir=str(out_dir))


def quiet(*_):
    pass


def trainer(task, out_dir, max_steps):
    """A Trainer that leaves the test split alone (the sample below covers it)."""
    return Trainer(task, train_config(out_dir, max_steps), log=quiet, evaluate_test=False)


@pytest.mark.slow  # 12 steps and 4 evaluations: about 8 s
def test_resnet_trains_and_resumes_bit_exactly_across_epochs(tmp_path):
    cfg = ResNetTaskConfig(**TINY)
    straight = ResNetTask(cfg, str(tmp_path / "a"))
    trainer(straight, tmp_path / "a", 6).fit()

    first = ResNetTask(cfg, str(tmp_path / "b"))
    half = trainer(first, tmp_path / "b", 3)
    half.fit()
    ckpt = read_checkpoint(half.checkpoint_path)
    rebuilt = TASKS[ckpt["config"]["task"]["name"]].from_config(ckpt["config"]["task"],
                                                                 str(tmp_path / "b"))
    second = trainer(rebuilt, tmp_path / "b", 6)
    second.resume(half.checkpoint_path)
    summary = second.fit()
    assert summary["outcome"] == "finished" and summary["steps"] == 6
    for key, value in straight.model.state_dict().items():  # running stats included
        assert np.array_equal(value.numpy(), rebuilt.model.state_dict()[key].numpy()), key

    metrics = rebuilt.evaluate("test")
    assert metrics["accuracy"] == pytest.approx(1 - metrics["error"])
    assert 0 <= metrics["accuracy"] <= 1 and metrics["loss"] > 0
    text = rebuilt.sample()
    assert f"test accuracy {metrics['accuracy']:.4f} on 898 digits" in text
    rows = [line for line in text.splitlines() if line[:3].strip().isdigit() and ":" in line[:4]]
    assert sum(int(n) for row in rows for n in row.split(":")[1].split()) == 898


def test_train_resnet_from_the_command_line(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "resnet", "--out-dir", str(out), "--batch-size", "32",
                 "--val-frac", "0.45", "--test-frac", "0.5", "--augment", "none",
                 "--max-steps", "1", "--eval-interval", "1", "--samples", "0"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["best_val"]["metric"] == "error"
    assert set(summary["test"]) == {"loss", "accuracy", "error"}
    assert main(["sample", "--checkpoint", str(out / "checkpoint.safetensors")]) == 0
    assert "confusion matrix" in capsys.readouterr().out
    _eval_groups_matches_fairlearn(out / "checkpoint.safetensors", tmp_path, capsys)


def _eval_groups_matches_fairlearn(checkpoint, tmp_path, capsys):
    """minifm eval --groups: per-group accuracy and counts equal fairlearn's MetricFrame on
    the same predictions, for a task field and for a groups file; a file of the wrong
    length is refused in one plain line."""
    fairlearn = pytest.importorskip("fairlearn.metrics")
    from sklearn.metrics import accuracy_score

    task, _ = task_from_checkpoint(str(checkpoint))
    y_true, y_pred = task.predictions("test")
    parity = np.where(y_true % 2 == 0, "even", "odd")
    groups_file = tmp_path / "groups.txt"
    groups_file.write_text("\n".join(parity) + "\n")
    for groups, sensitive in (("label", y_true), (str(groups_file), parity)):
        assert main(["eval", "--checkpoint", str(checkpoint), "--groups", groups]) == 0
        report = json.loads(capsys.readouterr().out)
        frame = fairlearn.MetricFrame(metrics=accuracy_score, y_true=y_true, y_pred=y_pred,
                                      sensitive_features=sensitive)
        ours = report["by_group"]["accuracy"]
        assert {str(k): v for k, v in ours.items()} == pytest.approx(
            {str(k): v for k, v in frame.by_group.to_dict().items()})
        assert report["accuracy_difference"] == pytest.approx(frame.difference())
        assert sum(report["by_group"]["count"].values()) == len(y_true)
    groups_file.write_text("a\nb\n")
    assert main(["eval", "--checkpoint", str(checkpoint), "--groups", str(groups_file)]) == 2
    assert "2 group names for" in capsys.readouterr().err
