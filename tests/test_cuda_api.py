"""minifm.cuda, benchmarks/gpu_check.sh and benchmarks/gpu_report.py, on any machine.

Without a GPU, minifm.cuda's logic runs against a small fake `cupy` module put in
sys.modules: a memory pool whose counters the test moves by hand, two devices whose
switches and synchronizations are recorded, events that read a clock the test advances.
The last tests use whatever `cupy` the suite has: a real CuPy where it sees a GPU (the
authority on CuPy's pool, events and generators), else the CuPy stand-in of
tests/fake_cupy, whose pool counts real allocations. gpu_check.sh runs in its --dry-run
mode, which skips the GPU stages.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

import minifm
from minifm import backend

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
import gpu_report  # noqa: E402


# ----------------------------------------------------------------------------- a fake CuPy
class FakeGPUs:
    """The state behind the fake cupy: the current device, a clock, pool counters."""

    def __init__(self, count=2):
        self.count = count
        self.current = 0
        self.clock_ms = 0.0
        self.used = [0] * count       # bytes in live arrays, per device
        self.cached = [0] * count     # bytes in free blocks the pool keeps, per device
        self.synchronized = []        # device ids, in the order they were synchronized
        self.allocator = None


def fake_cupy(gpus: FakeGPUs):
    class Device:
        def __init__(self, index=None):
            self.id = gpus.current if index is None else index

        def __enter__(self):
            self.previous, gpus.current = gpus.current, self.id
            return self

        def __exit__(self, *exc_info):
            gpus.current = self.previous

        def synchronize(self):
            gpus.synchronized.append(self.id)

    class Pool:
        def malloc(self, nbytes):
            gpus.used[gpus.current] += nbytes
            return nbytes

        def used_bytes(self):
            return gpus.used[gpus.current]

        def total_bytes(self):
            return gpus.used[gpus.current] + gpus.cached[gpus.current]

        def free_all_blocks(self):
            gpus.cached[gpus.current] = 0

    class Event:
        def __init__(self):
            self.time_ms, self.done = None, False

        def record(self):
            self.time_ms = gpus.clock_ms

        def synchronize(self):
            self.done = True

    def get_elapsed_time(start, end):
        assert end.done, "elapsed time read before the end event completed"
        return end.time_ms - start.time_ms

    def set_allocator(allocator):
        gpus.allocator = allocator

    pool = Pool()
    runtime = types.SimpleNamespace(
        getDeviceCount=lambda: gpus.count, getDevice=lambda: gpus.current,
        getDeviceProperties=lambda i: {"name": f"Fake GPU {i}".encode()})
    cupy = types.ModuleType("cupy")
    cupy.cuda = types.SimpleNamespace(runtime=runtime, Device=Device, Event=Event,
                                      get_elapsed_time=get_elapsed_time,
                                      set_allocator=set_allocator)
    cupy.get_default_memory_pool = lambda: pool
    cupy.random = types.SimpleNamespace(default_rng=np.random.default_rng)
    return cupy


@pytest.fixture
def gpus(monkeypatch):
    """Two fake GPUs behind a fake cupy module; minifm's CUDA state starts empty."""
    state = FakeGPUs()
    monkeypatch.setitem(sys.modules, "cupy", fake_cupy(state))
    monkeypatch.setattr(minifm.cuda, "_peaks", {})
    monkeypatch.setattr(minifm.cuda, "_counting_pool", None)
    monkeypatch.setattr(backend, "_default_generators", {})
    return state


@pytest.fixture
def no_cupy(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)  # `import cupy` raises ImportError
    monkeypatch.setattr(backend, "_default_generators", {})


NEEDS_GPU = [
    ("current_device", ()), ("get_device_name", ()), ("synchronize", ()),
    ("memory_allocated", ()), ("max_memory_allocated", ()), ("reset_peak_memory_stats", ()),
    ("memory_reserved", ()), ("empty_cache", ()),
]


# ----------------------------------------------------------------------------- no GPU
def test_without_cupy_nothing_is_available(no_cupy):
    assert minifm.cuda.is_available() is False
    assert minifm.cuda.device_count() == 0
    minifm.cuda.manual_seed(1)
    minifm.cuda.manual_seed_all(1)
    assert list(backend._default_generators) == []  # seeding without a GPU seeds nothing


@pytest.mark.parametrize("name, args", NEEDS_GPU)
def test_without_cupy_gpu_functions_say_cupy_is_missing(no_cupy, name, args):
    with pytest.raises(RuntimeError, match=rf"minifm.cuda.{name} needs CuPy"):
        getattr(minifm.cuda, name)(*args)


def test_without_cupy_timer_says_cupy_is_missing(no_cupy):
    with pytest.raises(RuntimeError, match="minifm.cuda.timer needs CuPy"):
        with minifm.cuda.timer():
            pass


@pytest.mark.parametrize("name, args", NEEDS_GPU)
def test_cupy_without_a_gpu(gpus, name, args):
    gpus.count = 0
    assert minifm.cuda.is_available() is False and minifm.cuda.device_count() == 0
    with pytest.raises(RuntimeError, match=rf"minifm.cuda.{name}: CuPy is installed but sees no"):
        getattr(minifm.cuda, name)(*args)


def test_cupy_without_a_driver(gpus, monkeypatch):
    def no_driver():
        raise OSError("cudaErrorInsufficientDriver")
    monkeypatch.setattr(sys.modules["cupy"].cuda.runtime, "getDeviceCount", no_driver)
    assert minifm.cuda.is_available() is False
    with pytest.raises(RuntimeError, match="cannot reach a GPU.*InsufficientDriver"):
        minifm.cuda.synchronize()


# ----------------------------------------------------------------------------- fake GPUs
def test_devices(gpus):
    assert minifm.cuda.is_available() and minifm.cuda.device_count() == 2
    assert minifm.cuda.current_device() == 0
    assert minifm.cuda.get_device_name() == "Fake GPU 0"
    assert minifm.cuda.get_device_name("cuda:1") == "Fake GPU 1"


def test_synchronize_the_named_device_and_come_back(gpus):
    minifm.cuda.synchronize()
    minifm.cuda.synchronize("cuda:1")
    minifm.cuda.synchronize(minifm.device("cuda", 0))
    minifm.cuda.synchronize(1)
    assert gpus.synchronized == [0, 1, 0, 1]
    assert gpus.current == 0


@pytest.mark.parametrize("device, message", [
    (2, r"device 2 does not exist \(2 GPUs visible\)"),
    ("cuda:5", "device 5 does not exist"),
    ("cpu", "expected a CUDA device, got cpu"),
])
def test_bad_devices(gpus, device, message):
    with pytest.raises(ValueError, match=rf"minifm.cuda.synchronize: {message}"):
        minifm.cuda.synchronize(device)


def test_memory_counters_and_peak(gpus):
    assert minifm.cuda.memory_allocated() == 0    # starts counting: wraps the pool's malloc
    malloc = gpus.allocator
    assert malloc is not None
    malloc(100)
    malloc(300)
    gpus.used[0] -= 300                           # an array freed: the pool keeps the block
    gpus.cached[0] += 300
    malloc(50)
    assert minifm.cuda.memory_allocated() == 150
    assert minifm.cuda.max_memory_allocated() == 400
    assert minifm.cuda.memory_reserved() == 450
    minifm.cuda.empty_cache()
    assert minifm.cuda.memory_reserved() == 150
    minifm.cuda.reset_peak_memory_stats()
    assert minifm.cuda.max_memory_allocated() == 150
    malloc(10)
    assert minifm.cuda.max_memory_allocated() == 160
    minifm.cuda.reset_peak_memory_stats()         # a second call does not wrap the wrapper
    assert gpus.allocator is malloc


def test_peaks_are_per_device(gpus):
    minifm.cuda.reset_peak_memory_stats()
    with sys.modules["cupy"].cuda.Device(1):
        gpus.allocator(500)
    gpus.allocator(20)
    assert minifm.cuda.max_memory_allocated(1) == 500
    assert minifm.cuda.max_memory_allocated("cuda:0") == 20
    assert minifm.cuda.memory_allocated(1) == 500 and gpus.current == 0


def test_manual_seed_seeds_the_current_gpu_and_all(gpus):
    minifm.cuda.manual_seed(7)
    assert [str(d) for d in backend._default_generators] == ["cuda:0"]
    first = backend.default_generator("cuda:0").rng.standard_normal(3)
    minifm.cuda.manual_seed_all(7)
    assert {str(d) for d in backend._default_generators} == {"cuda:0", "cuda:1"}
    again = [backend.default_generator(d).rng.standard_normal(3) for d in ("cuda:0", "cuda:1")]
    np.testing.assert_array_equal(first, again[0])
    np.testing.assert_array_equal(first, again[1])


def test_timer_reads_the_events(gpus):
    gpus.clock_ms = 10.0
    with minifm.cuda.timer() as t:
        gpus.clock_ms += 2.5
    assert t.elapsed_ms == 2.5


# ----------------------------------------------------------------------------- reports
def test_attention_flops_follow_flash_attention():
    # B=2, H=3, T=4, D=8: 4 * 2 * 3 * 16 * 8 = 3072 flops forward, half when causal
    assert gpu_report.attention_flops(2, 3, 4, 8, causal=False) == 3072
    assert gpu_report.attention_flops(2, 3, 4, 8, causal=True) == 1536
    payload = {"config": {"batch": 2, "heads": 3, "head_dim": 8},
               "results": [{"T": 4, "causal": False, "impl": "x",
                            "forward_ms": 1e-6, "forward_backward_ms": 3.5e-6}]}
    row, = gpu_report.attention_rows(payload)
    assert row["forward_tflops"] == pytest.approx(3072 / 1e-9 / 1e12)
    assert row["forward_backward_tflops"] == pytest.approx(3072 / 1e-9 / 1e12)


@pytest.mark.skipif(shutil.which("bash") is None or shutil.which("timeout") is None,
                    reason="needs bash and timeout")
def test_gpu_check_dry_run(tmp_path):
    """The whole orchestration on the CPU: GPU stages skipped with a reason, the GPT
    benchmark run tiny, the attention stage cut by a 5 s limit (recorded as a timeout,
    the run goes on), and the report written."""
    env = dict(os.environ, GPU_CHECK_TIMEOUT_ATTENTION="5")
    done = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--dry-run",
                           "--out", str(tmp_path), "--python", sys.executable],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    status = {s["stage"]: s["status"] for s in report["stages"]}
    assert status == {"gpu": "skipped", "env": "ok", "tests": "skipped",
                      "attention": "timeout", "train_gpt": "ok", "train_vision": "skipped"}
    notes = {s["stage"]: s["note"] for s in report["stages"]}
    assert notes["tests"] == "dry run: no GPU stages"
    assert "stopped after 5 s" in notes["attention"]
    assert report["dry_run"] is True and report["env"]["minifm_cuda_available"] is False
    assert report["attention"] is None
    row, = report["train_gpt"]["rows"]
    assert row["config"] == "small" and row["minifm"]["median_s"] > 0
    md = (tmp_path / "gpu_check.md").read_text()
    assert md.startswith("# minifm GPU check: dry run on the CPU, no GPU")
    assert "| attention | timeout |" in md and "| small |" in md
    assert "No attention results" in md


# ----------------------------------------------------------------------------- a real GPU
# (or the CuPy stand-in: conftest.py makes CUDA available to every test run)
needs_gpu = pytest.mark.skipif(not minifm.cuda.is_available(), reason="no CUDA device")


@needs_gpu
def test_real_gpu_memory_peak_and_timer():
    import gc

    import cupy
    gc.collect()    # arrays of earlier tests held in reference cycles go now, not midway
    gc.disable()
    try:
        minifm.cuda.synchronize()
        minifm.cuda.reset_peak_memory_stats()
        before = minifm.cuda.memory_allocated()
        x = minifm.zeros(1 << 20, device="cuda")             # 4 MiB
        assert minifm.cuda.memory_allocated() - before >= 4 << 20
        with minifm.cuda.timer() as t:
            y = (x + 1) * 2
        assert t.elapsed_ms > 0 and float(y.sum().item()) == 2 * (1 << 20)
        del x, y
        assert minifm.cuda.max_memory_allocated() - before >= 8 << 20
        assert minifm.cuda.memory_allocated() == before
        reserved = minifm.cuda.memory_reserved()
        assert reserved == cupy.get_default_memory_pool().total_bytes()
        minifm.cuda.empty_cache()
        assert before <= minifm.cuda.memory_reserved() < reserved
    finally:
        gc.enable()


@needs_gpu
def test_real_gpu_manual_seed_repeats_a_draw():
    minifm.cuda.manual_seed(3)
    a = minifm.randn(5, device="cuda").cpu().numpy()
    minifm.cuda.manual_seed_all(3)
    b = minifm.randn(5, device="cuda").cpu().numpy()
    np.testing.assert_array_equal(a, b)
