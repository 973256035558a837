"""The README's Python-API example for GPT runs end to end (a few steps, on a small text
file): forward, backward, AdamW, the LR schedule, evaluation and sampling. The BERT and
DCGAN examples drive the same tasks as `minifm train`, which tests/test_tasks.py covers."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_train_gpt_example_runs_a_few_steps(tmp_path):
    text = tmp_path / "text.txt"
    text.write_text("To be, or not to be, that is the question.\n" * 500)
    done = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "train_gpt.py"),
                           "--data", str(text), "--steps", "3"],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "step 0: train loss" in done.stdout and "step 2: train loss" in done.stdout


def test_tanh_derivatives_example_matches_closed_forms(tmp_path):
    """examples/tanh_derivatives.py asserts its four derivatives equal the closed forms."""
    pytest.importorskip("matplotlib")
    done = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "tanh_derivatives.py"),
                           "--out-dir", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("closed form") == 5
