"""NumPy's floating-point warnings do not leak out of minifm's ops: 1/0, log(0), sqrt(-1)
and overflow give PyTorch's inf/nan, silently, forward and backward; NumPy code of the
user's own still warns. Run in a fresh interpreter with RuntimeWarnings as errors."""
import subprocess
import sys
import textwrap

PROGRAM = textwrap.dedent("""
    import numpy as np
    import torch
    import minifm
    import minifm.nn.functional as F

    def both(fn, *values):
        ours = [minifm.tensor(v, requires_grad=True) for v in values]
        theirs = [torch.tensor(v, requires_grad=True) for v in values]
        a, b = fn(minifm, ours), fn(torch, theirs)
        a.sum().backward()
        b.sum().backward()
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())
        for x, y in zip(ours, theirs):
            np.testing.assert_array_equal(x.grad.numpy(), y.grad.numpy())

    both(lambda lib, t: t[0].log(), [0.0, -1.0, 2.0])
    both(lambda lib, t: t[0].sqrt(), [0.0, -1.0, 4.0])
    both(lambda lib, t: 1 / t[0], [0.0, -0.0, 2.0])
    both(lambda lib, t: t[0].exp(), [1000.0, -1000.0, 0.0])
    both(lambda lib, t: t[0] / t[1], [0.0, 1.0, -1.0], [0.0, 0.0, 0.0])
    both(lambda lib, t: t[0].pow(0.5), [-1.0, 0.0, 9.0])
    both(lambda lib, t: t[0].masked_fill(lib.tensor([True, True, False]), float("-inf")).softmax(0),
         [1.0, 2.0, 3.0])
    try:
        np.log(np.zeros(1))
    except RuntimeWarning:
        print("user warning kept")
""")


def test_no_floating_point_warnings_leak_from_ops():
    done = subprocess.run([sys.executable, "-W", "error::RuntimeWarning", "-c", PROGRAM],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "user warning kept"
    assert "Warning" not in done.stderr
