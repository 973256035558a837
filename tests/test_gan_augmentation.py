"""benchmarks/gan_augmentation_study.py: its classical augmentation (shifts and small
rotations keep the digit's size and ink where they should) and a --quick smoke run that
writes the table, the plot and the JSON with every condition."""
import json

import numpy as np
import pytest

import gan_augmentation_study as study
from minifm import backend


def test_classical_augmentation_shifts_and_rotates_a_little():
    rng = np.random.default_rng(0)
    images = np.zeros((200, 1, 8, 8), np.float32)
    images[:, :, 2:6, 3:5] = rng.uniform(0.5, 1, (200, 1, 4, 2))
    out = study.classical_augmentation(images, backend.Generator(seed=0))
    assert out.shape == images.shape and out.dtype == np.float32
    assert not np.array_equal(out, images)
    # a small rotation and a one-pixel shift keep most of the ink on the 8x8 canvas
    kept = out.sum(axis=(1, 2, 3)) / images.sum(axis=(1, 2, 3))
    assert 0.8 < kept.min() and kept.max() < 1.2
    # the same generator state gives the same batch
    again = study.classical_augmentation(images, backend.Generator(seed=0))
    np.testing.assert_array_equal(out, again)


def test_rotation_is_within_ten_degrees():
    """A horizontal bar through the centre stays near horizontal: its ink stays in the
    middle rows (a 45-degree turn would spread it over the whole canvas)."""
    images = np.zeros((50, 1, 9, 9), np.float32)
    images[:, :, 4, :] = 1.0
    rotated = study.classical_augmentation(images, backend.Generator(seed=1))
    middle = rotated[:, :, 2:7, :].sum(axis=(1, 2, 3)) / rotated.sum(axis=(1, 2, 3))
    assert middle.min() > 0.9


@pytest.mark.slow
def test_quick_study_writes_table_plot_and_json(tmp_path, capsys):
    study.main(["--quick", "--output", str(tmp_path / "ga")])
    report = json.loads((tmp_path / "ga.json").read_text())
    assert set(report["results"]) == set(study.CONDITIONS)
    for condition in study.CONDITIONS:
        cell = report["results"][condition]["2"]
        assert len(cell["accuracies"]) == 1 and 0 <= cell["mean"] <= 1
    table = (tmp_path / "ga.md").read_text()
    assert all(f"| {c} |" in table for c in study.CONDITIONS)
    assert (tmp_path / "ga.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "ga_cgan_k2.png").exists()
    assert "| condition | k = 2 |" in capsys.readouterr().out
