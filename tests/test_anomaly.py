"""Anomaly mode against torch.autograd.detect_anomaly: the same error message for a NaN made
in backward, a forward traceback that ends at the user's line, and the mode's switches."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import minifm
from minifm import autograd

torch = pytest.importorskip("torch")


def sqrt_of_negative_error(lib):
    """The RuntimeError (and the warnings) of backward through sqrt(-1) in anomaly mode."""
    x = lib.tensor([-1.0, 4.0], requires_grad=True)
    with warnings.catch_warnings(record=True) as caught, pytest.raises(RuntimeError) as err:
        warnings.simplefilter("always")
        with lib.autograd.detect_anomaly():
            y = x.sqrt()  # the user's line
            y.sum().backward()
    return str(err.value), [str(w.message) for w in caught]


def test_message_names_the_backward_node_as_pytorch_does():
    ours, our_warnings = sqrt_of_negative_error(minifm)
    theirs, _ = sqrt_of_negative_error(torch)
    assert ours == theirs == "Function 'SqrtBackward0' returned nan values in its 0th output."
    assert our_warnings[0].startswith("Anomaly Detection has been enabled")


def test_forward_traceback_ends_at_the_users_line():
    _, caught = sqrt_of_negative_error(minifm)
    report = caught[-1]
    assert report.startswith("Error detected in SqrtBackward0. Traceback of forward call")
    last_frame = report.strip().splitlines()[-2:]
    assert __file__ in last_frame[0] and "sqrt_of_negative_error" in last_frame[0]
    assert last_frame[1].strip() == "y = x.sqrt()  # the user's line"


def test_nodes_remember_where_they_were_made_and_modes_restore():
    x = minifm.ones(2, requires_grad=True)
    assert not autograd.is_anomaly_enabled()
    with autograd.set_detect_anomaly(True, check_nan=False):
        assert autograd.is_anomaly_enabled() and not autograd.is_anomaly_check_nan_enabled()
        y = (x * -1).sqrt()
        assert y.grad_fn.trace[-1].line == "y = (x * -1).sqrt()"
        y.sum().backward()  # NaN gradients, but nothing is checked
    assert not autograd.is_anomaly_enabled()
    assert np.isnan(x.grad.numpy()).all()
    assert not hasattr(minifm.ones(1, requires_grad=True).exp().grad_fn, "trace")


def test_no_check_outside_anomaly_mode():
    x = minifm.tensor([-1.0], requires_grad=True)
    x.sqrt().backward()  # PyTorch too gives NaN silently
    assert np.isnan(x.grad.numpy()).all()
