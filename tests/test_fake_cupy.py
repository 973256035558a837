"""The CuPy stand-in (tests/fake_cupy) keeps CuPy's rules, so that the cuda tests on the CPU
catch what a GPU would: a device array NumPy may not convert, no host/device mixing,
explicit copies both ways, 0-d results, views that share memory, a memory pool that counts,
and CuPy's Generator API. Where a real CuPy sees a GPU the stand-in is not in use and these
tests skip; the conftest's choice between the two is tested either way."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import minifm
from conftest import CUPY_STAND_IN

STAND_IN = Path(__file__).resolve().parent / "fake_cupy"
needs_stand_in = pytest.mark.skipif(not CUPY_STAND_IN, reason="a real CuPy sees a GPU here")


def test_the_stand_in_is_used_exactly_when_no_real_cupy_sees_a_gpu():
    import cupy
    from_stand_in = Path(cupy.__file__).resolve().is_relative_to(STAND_IN)
    assert from_stand_in == CUPY_STAND_IN
    assert minifm.cuda.is_available()  # one or the other: cuda tests never skip
    name = minifm.cuda.get_device_name()
    assert ("stand-in" in name) == CUPY_STAND_IN


@pytest.fixture
def cp():
    import cupy
    return cupy


@needs_stand_in
def test_numpy_refuses_device_arrays(cp):
    a = cp.arange(6, dtype=np.float32).reshape(2, 3)
    assert type(a) is cp.ndarray and not isinstance(a, np.ndarray)
    for convert in (np.asarray, np.array, lambda x: np.exp(x), lambda x: np.sum(x),
                    lambda x: np.concatenate([x, x])):
        with pytest.raises(TypeError, match="Implicit conversion to a NumPy array is not allowed"
                                            "|does not support ufuncs"):
            convert(a)
    with pytest.raises(AttributeError):
        a.__array_interface__  # noqa: B018  (NumPy's other way in stays closed)


@needs_stand_in
def test_host_and_device_arrays_do_not_mix(cp):
    a, host = cp.ones(3), np.ones(3)
    for mix in (lambda: a + host, lambda: host + a, lambda: a * host, lambda: cp.add(a, host),
                lambda: cp.where(a > 0, host, a)):
        with pytest.raises(TypeError, match="Unsupported type <class 'numpy.ndarray'>"):
            mix()
    with pytest.raises(TypeError, match="Unsupported type"):
        a[:] = host                     # CuPy converts a host value only for advanced indexing
    a[np.array([0, 2])] = np.array([5.0, 6.0])
    b = a * np.float32(2) + 1           # NumPy and Python scalars are fine
    assert b.get().tolist() == [11.0, 3.0, 13.0]


@needs_stand_in
def test_copies_both_ways_and_results_stay_on_the_device(cp):
    host = np.arange(4.0)
    a = cp.asarray(host)
    host[0] = 100.0                     # a copy, not a view of the host array
    assert a.get()[0] == 0.0 and cp.asnumpy(a)[0] == 0.0 and type(a.get()) is np.ndarray
    total = a.sum()
    assert type(total) is cp.ndarray and total.shape == () and float(total) == 6.0
    assert type(a[1]) is cp.ndarray and int(a[1]) == 1
    assert cp.asarray(a) is a and cp.get_array_module(a) is cp
    assert cp.get_array_module(host) is np


@needs_stand_in
def test_views_share_memory_and_name_their_base(cp):
    a = cp.zeros((2, 3))
    view = a[:, 1]
    view += 1
    assert a.get()[:, 1].tolist() == [1.0, 1.0]
    assert view.base is not None and cp.may_share_memory(view, a)
    assert a.base is None
    out = cp.zeros(3)
    assert cp.add(out, 1, out=out) is out


@needs_stand_in
def test_scatter_add_refuses_int64_as_cuda_atomics_do(cp):
    grad = cp.zeros(3, dtype=np.float32)
    cp.add.at(grad, np.array([0, 0, 2]), cp.ones(3, dtype=np.float32))
    assert grad.get().tolist() == [2.0, 0.0, 1.0]
    with pytest.raises(TypeError, match="scatter_add only supports"):
        cp.add.at(cp.zeros(3, dtype=np.int64), cp.asarray([0]), 1)


@needs_stand_in
def test_memory_pool_counts_live_arrays_and_caches_freed_blocks(cp):
    pool = cp.get_default_memory_pool()
    pool.free_all_blocks()
    used = pool.used_bytes()
    a = cp.zeros(1000, dtype=np.float32)              # 4000 bytes: one 4096-byte block
    assert pool.used_bytes() == used + 4096
    view = a[10:]
    assert pool.used_bytes() == used + 4096           # a view allocates nothing
    del a, view
    assert pool.used_bytes() == used and pool.total_bytes() == used + 4096
    b = cp.ones(900, dtype=np.float32)                # reuses the cached block
    assert pool.total_bytes() == used + 4096
    del b
    pool.free_all_blocks()
    assert pool.total_bytes() == used


@needs_stand_in
def test_the_allocator_sees_every_allocation(cp):
    seen = []
    previous = cp.cuda.get_allocator()      # minifm.cuda's peak counter may be installed

    def allocator(nbytes):
        seen.append(nbytes)
        return previous(nbytes)
    cp.cuda.set_allocator(allocator)
    try:
        x = cp.ones(10) * 2
    finally:
        cp.cuda.set_allocator(previous)
    assert seen == [80, 80] and x.get().tolist() == [2.0] * 10


@needs_stand_in
def test_one_device_streams_and_events(cp):
    assert cp.cuda.runtime.getDeviceCount() == 1
    with cp.cuda.Device(0) as dev:
        dev.synchronize()
    with pytest.raises(cp.cuda.runtime.CUDARuntimeError, match="invalid device ordinal"):
        with cp.cuda.Device(1):
            pass
    assert cp.cuda.get_current_stream().ptr == 0
    with cp.cuda.Stream() as stream:
        assert cp.cuda.get_current_stream() is stream and stream.ptr != 0
    start, end = cp.cuda.Event(), cp.cuda.Event()
    start.record()
    end.record()
    end.synchronize()
    assert cp.cuda.get_elapsed_time(start, end) >= 0


@needs_stand_in
def test_the_generator_has_cupys_methods_only(cp):
    rng = cp.random.default_rng(0)
    x = rng.standard_normal((2, 3), dtype=np.float32)
    assert type(x) is cp.ndarray and x.dtype == np.float32
    assert type(rng.integers(0, 5, size=4)) is cp.ndarray
    for missing in ("permutation", "choice", "shuffle", "normal"):
        assert not hasattr(rng, missing)    # CuPy's Generator lacks them: minifm must too


@needs_stand_in
def test_minifm_tensors_on_cuda_hold_device_arrays(cp):
    t = minifm.ones(2, 3, device="cuda")
    assert type(t._data) is cp.ndarray and t.device == minifm.device("cuda", 0)
    assert type(t.cpu()._data) is np.ndarray
    with pytest.raises(TypeError, match="can't convert cuda:0 tensor to numpy"):
        t.numpy()
    assert np.asarray(t).tolist() == [[1.0] * 3] * 2     # Tensor.__array__ copies explicitly


def test_a_subprocess_does_not_see_the_stand_in():
    """The stand-in is on the tests' import path only: a command a test starts (the CLI in a
    subprocess) imports the real CuPy, or none."""
    import subprocess
    code = "import importlib.util as u; s = u.find_spec('cupy'); print(s and s.origin)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert str(STAND_IN) not in out


@needs_stand_in
def test_copies_between_host_and_device_are_counted(cp):
    cp._transfers.clear()
    a = cp.asarray(np.arange(4.0))                       # to the device
    b = a[np.array([0, 1])] + a[[2, 3]]                  # two host index arrays copied
    a[np.array([0])] = np.array([9.0])                   # index and value copied
    cp.random.default_rng(0).random(3)                   # drawn on the device: no copy
    assert cp._transfers == {"to_device": 5}
    float(b[0]), b.get(), cp.asnumpy(b), b.tolist(), bool(b[1] > 0), a.sum().item()
    assert cp._transfers == {"to_device": 5, "to_host": 6}


@needs_stand_in
def test_ufunc_methods_are_cupys_only(cp):
    """CuPy has ufunc.accumulate for add only, reduce for add and multiply (cupy#7082)."""
    x = cp.arange(4.0)
    assert cp.add.accumulate(x).get().tolist() == [0.0, 1.0, 3.0, 6.0]
    assert float(cp.multiply.reduce(x + 1)) == 24.0
    for method in (lambda: cp.maximum.accumulate(x), lambda: cp.logaddexp.accumulate(x),
                   lambda: cp.maximum.reduce(x), lambda: cp.multiply.at(x, [0], 2.0)):
        with pytest.raises(NotImplementedError, match="CuPy has ufunc"):
            method()
