"""End to end: a small MLP and a small CNN, built from minifm.nn and trained with minifm.optim
on scikit-learn's 8x8 digits, reach high accuracy on held-out digits in seconds."""
import numpy as np
import pytest

import minifm
from minifm import nn
from minifm.data import DataLoader, TensorDataset

pytest.importorskip("sklearn")
from minifm.data.digits import load_digits  # noqa: E402


def _fit_and_score(model, splits, epochs, lr):
    x_train, y_train = splits["train"]
    loader = DataLoader(TensorDataset(minifm.tensor(x_train), minifm.tensor(y_train)),
                        batch_size=32, shuffle=True, generator=minifm.Generator(seed=0))
    optimizer = minifm.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(epochs):
        for x, y in loader:
            loss = nn.functional.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()
    x_test, y_test = splits["test"]
    with minifm.no_grad():
        predicted = model(minifm.tensor(x_test)).argmax(dim=1).numpy()
    return float(np.mean(predicted == y_test))


def test_mlp_learns_digits():
    minifm.manual_seed(0)
    splits = load_digits(seed=0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    assert _fit_and_score(model, splits, epochs=15, lr=3e-3) > 0.93


def test_cnn_learns_digits():
    minifm.manual_seed(0)
    splits = load_digits(seed=0)
    model = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                          nn.MaxPool2d(2), nn.Flatten(), nn.Linear(16 * 4 * 4, 10))
    assert _fit_and_score(model, splits, epochs=4, lr=5e-3) > 0.95
