"""minifm on CUDA: every op of the table, a module's training step, the optimizers and a
checkpoint, with tensors on device="cuda", against PyTorch on the CPU.

Without a GPU, "cuda" is the CuPy stand-in (tests/fake_cupy, see conftest.py): NumPy
underneath, but a device array NumPy may not touch, so these tests catch `np.` used where
an op must use its array module, results left on the wrong device and host copies. Where
CuPy sees a GPU, the same tests run on it.
"""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import minifm  # noqa: E402
from minifm import backend  # noqa: E402
from conftest import CUPY_STAND_IN, assert_close, call_op, flat, to_numpy  # noqa: E402
from optable import F64, OPS, Make, Sample  # noqa: E402

CUDA = backend.as_device("cuda")


def on_cuda(tensor, sample):
    assert isinstance(tensor, minifm.Tensor), (sample, type(tensor))
    assert tensor.device == CUDA, (sample, tensor.device)
    assert not isinstance(tensor._data, np.ndarray), (sample, "a host array in a cuda tensor")


def has_arrays(value):
    if isinstance(value, Sample):
        return has_arrays(value.args) or has_arrays(list(value.kwargs.values()))
    if isinstance(value, (tuple, list)):
        return any(has_arrays(v) for v in value)
    return isinstance(value, np.ndarray)


def cases(select):
    return [pytest.param(info, dtype, id=f"{info.name}-{dtype.name}")
            for info in OPS for dtype in info.dtypes[:1] if select(info, dtype)]


@pytest.mark.parametrize("device", ["cuda"])  # named so that conftest counts it
@pytest.mark.parametrize("info,dtype", cases(lambda info, dtype: True))
def test_op_forward_and_backward_on_cuda(info, dtype, device):
    grad = info.differentiable and dtype.kind == "f"
    for sample in info.samples(Make(dtype)):
        t_leaves, leaves = ([], []) if grad else (None, None)
        theirs = call_op(info, sample, "torch", t_leaves)
        ours = call_op(info, sample, "minifm", leaves, "cuda")
        assert len(ours) == len(theirs), sample
        for a, b in zip(ours, theirs):
            if has_arrays(sample):  # factories (tril_indices...) stay on their default device
                on_cuda(a, sample)
            assert_close(a, b, msg=lambda m: f"{sample}: {m}")
        if not grad:
            continue
        pairs = [(o, t) for o, t in zip(ours, theirs)
                 if o.is_floating_point() and o.requires_grad]
        if not pairs:
            continue
        rng = np.random.default_rng(1)
        cots = [rng.standard_normal(tuple(o.shape)).astype(to_numpy(o).dtype) for o, _ in pairs]
        grads = minifm.autograd.grad([o for o, _ in pairs], leaves,
                                     [minifm.tensor(c, device="cuda") for c in cots],
                                     allow_unused=True)
        t_grads = torch.autograd.grad([t for _, t in pairs], t_leaves,
                                      [torch.from_numpy(c) for c in cots], allow_unused=True)
        for leaf, g, tg in zip(leaves, grads, t_grads):
            if tg is None or g is None:
                continue
            on_cuda(g, sample)
            assert g.shape == leaf.shape and g.dtype == leaf.dtype, sample
            assert_close(g, tg, msg=lambda m: f"{sample}: {m}")



# ----------------------------------------------------------------------------- random
def _filled(method, *args, dtype=minifm.float32):
    return lambda: getattr(minifm.zeros(3, 4, dtype=dtype, device="cuda"), method)(*args)


RANDOM = {
    "rand": lambda: minifm.rand(3, 4, device="cuda"),
    "randn": lambda: minifm.randn(3, 4, device="cuda", dtype=minifm.float64),
    "randint": lambda: minifm.randint(0, 5, (3, 4), device="cuda"),
    "randperm": lambda: minifm.randperm(7, device="cuda"),
    "rand_like": lambda: minifm.rand_like(minifm.zeros(3, device="cuda")),
    "normal": lambda: minifm.normal(minifm.zeros(3, 4, device="cuda"),
                                    minifm.ones(3, 4, device="cuda")),
    "bernoulli": lambda: minifm.bernoulli(minifm.full((3, 4), 0.5, device="cuda")),
    "poisson": lambda: minifm.poisson(minifm.full((3, 4), 2.0, device="cuda")),
    "multinomial": lambda: minifm.multinomial(minifm.ones(2, 5, device="cuda"), 3),
    "dropout": lambda: minifm.nn.functional.dropout(minifm.ones(3, 4, device="cuda"), 0.5),
    "uniform_": _filled("uniform_"),
    "normal_": _filled("normal_"),
    "random_": _filled("random_", 0, 10, dtype=minifm.int64),
    "bernoulli_": _filled("bernoulli_", 0.3),
    "exponential_": _filled("exponential_"),
    "geometric_": _filled("geometric_", 0.3),
    "log_normal_": _filled("log_normal_"),
    "cauchy_": _filled("cauchy_"),
}


@pytest.mark.parametrize("device", ["cuda"])
@pytest.mark.parametrize("name", list(RANDOM))
def test_random_draws_stay_on_cuda(name, device):
    out = RANDOM[name]()
    on_cuda(out, name)
    assert bool(minifm.isfinite(out.float()).all())


# ----------------------------------------------------------------------------- training steps
def vision_model():
    nn = minifm.nn
    # no bias before BatchNorm: its gradient is rounding noise, which Adam would amplify
    return nn.Sequential(nn.Conv2d(2, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Conv2d(4, 4, 3, padding=1, groups=2),
                         nn.GroupNorm(2, 4), nn.GELU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(4, 8), nn.LayerNorm(8), nn.Dropout(0.1), nn.Linear(8, 3))


class SequenceModel(minifm.nn.Module):
    def __init__(self):
        super().__init__()
        nn = minifm.nn
        self.embed = nn.Embedding(11, 8)
        self.encoder = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.1, batch_first=True)
        self.head = nn.Linear(8, 11)
        # the key bias's gradient is rounding noise (softmax ignores a shift shared by all
        # keys), which Adam and RMSprop would amplify into different steps on each device
        self.encoder.self_attn.in_proj_bias.requires_grad_(False)

    def forward(self, ids):
        T = ids.shape[1]
        mask = minifm.triu(minifm.full((T, T), float("-inf"), device=ids.device), 1)
        return self.head(self.encoder(self.embed(ids), src_mask=mask, is_causal=True))


OPTIMIZERS = {
    "SGD": lambda p: minifm.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-2),
    "Adam": lambda p: minifm.optim.Adam(p, lr=1e-2, amsgrad=True),
    "AdamW": lambda p: minifm.optim.AdamW(p, lr=1e-2, weight_decay=0.1),
    "RMSprop": lambda p: minifm.optim.RMSprop(p, lr=1e-2, momentum=0.5, centered=True),
}


def batch(kind, device):
    rng = np.random.default_rng(0)
    if kind == "vision":
        x = minifm.tensor(rng.standard_normal((4, 2, 6, 6)).astype(np.float32), device=device)
        y = minifm.tensor(rng.integers(0, 3, 4), device=device)
    else:
        x = minifm.tensor(rng.integers(0, 11, (2, 5)), device=device)
        y = minifm.tensor(rng.integers(0, 11, 10), device=device)
    return x, y


def steps(model, opt, kind, device, n, scheduler=None):
    x, y = batch(kind, device)
    for _ in range(n):
        minifm.manual_seed(3)
        minifm.cuda.manual_seed(3)
        opt.zero_grad()
        out = model(x)
        loss = minifm.nn.functional.cross_entropy(out.reshape(-1, out.shape[-1]), y)
        loss.backward()
        minifm.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if scheduler is not None:
            scheduler.step()
    return float(loss.item())


def build(kind, name, device, state=None):
    minifm.manual_seed(0)
    model = vision_model() if kind == "vision" else SequenceModel()
    if state is not None:
        model.load_state_dict(state)
    model = model.to(device)
    opt = OPTIMIZERS[name](model.parameters())
    return model, opt, minifm.optim.lr_scheduler.StepLR(opt, 1, gamma=0.5)


def assert_states_close(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for key in sa:
        assert_close(sa[key], sb[key], rtol=1e-4, atol=1e-5, msg=lambda m: f"{key}: {m}")


@pytest.mark.parametrize("device", ["cuda"])
@pytest.mark.parametrize("kind", ["vision", "sequence"])
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_training_steps_on_cuda_match_the_cpu(kind, name, device):
    """Two steps (clipped gradients, a scheduler) on CUDA give the CPU's parameters, and
    every parameter, gradient, buffer and optimizer state stays on CUDA. The models train
    (BatchNorm's batch statistics), with dropout's p set to 0: its draws differ between
    devices."""
    cpu, cpu_opt, cpu_sched = build(kind, name, "cpu")
    gpu, gpu_opt, gpu_sched = build(kind, name, device, cpu.state_dict())
    for module in (cpu, gpu):
        for m in module.modules():
            if isinstance(m, minifm.nn.Dropout):
                m.p = 0.0
    if kind == "sequence":
        for m in (cpu.encoder, gpu.encoder):
            m.dropout.p = m.dropout1.p = m.dropout2.p = 0.0
    loss_cpu = steps(cpu, cpu_opt, kind, "cpu", 2, cpu_sched)
    loss_gpu = steps(gpu, gpu_opt, kind, device, 2, gpu_sched)
    assert loss_gpu == pytest.approx(loss_cpu, rel=1e-4)
    assert_states_close(gpu, cpu)
    for t in [*gpu.parameters(), *gpu.buffers(),
              *(p.grad for p in gpu.parameters() if p.grad is not None)]:
        on_cuda(t, name)
    for state in gpu_opt.state.values():
        for value in state.values():
            if isinstance(value, minifm.Tensor):
                on_cuda(value, name)


@pytest.mark.parametrize("device", ["cuda"])
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_checkpoint_saved_from_cuda_resumes_on_cuda_and_cpu(name, device, tmp_path):
    """minifm.save of a CUDA model's and optimizer's state, loaded back onto CUDA (and onto
    the CPU): the next step is the one the original takes."""
    model, opt, _ = build("vision", name, device)
    steps(model, opt, "vision", device, 1)
    path = tmp_path / "ckpt.pt"
    minifm.save({"model": model.state_dict(), "optim": opt.state_dict()}, path)
    steps(model, opt, "vision", device, 1)
    for where in (device, "cpu"):
        ckpt = minifm.load(path, map_location=where)
        again, again_opt, _ = build("vision", name, where)
        again.load_state_dict(ckpt["model"])
        again_opt.load_state_dict(ckpt["optim"])
        for state in again_opt.state.values():
            for value in state.values():
                if isinstance(value, minifm.Tensor):
                    assert value.device == backend.as_device(where)
        steps(again, again_opt, "vision", where, 1)
        assert_states_close(again, model)


# ----------------------------------------------------------------------------- beyond the ops
def _small_cnn():
    nn = minifm.nn
    minifm.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(144, 5)).to("cuda")


def _image():
    return minifm.randn(2, 3, 8, 8, device="cuda")


def _gpt_generate():
    from minifm.models.gpt import GPT, GPTConfig
    model = GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=8))
    return model.to("cuda").generate(minifm.tensor([[1, 2]], device="cuda"), 8, top_k=3)


def _gradchecks():
    x = minifm.randn(3, dtype=minifm.float64, device="cuda", requires_grad=True)
    assert minifm.autograd.gradcheck(lambda t: (t * t.sin()).sum(), (x,))
    assert minifm.autograd.gradgradcheck(lambda t: t * t.sin(), (x,))
    return minifm.autograd.functional.hessian(lambda t: (t ** 3).sum(), x.detach())


def _pruned():
    model = _small_cnn()
    minifm.nn.utils.prune.l1_unstructured(model[3], "weight", 0.5)
    minifm.nn.utils.prune.random_unstructured(model[0], "weight", 0.5)
    return model[3].weight, model[3].weight_mask, model[0].weight


def _vector_round_trip():
    model = _small_cnn()
    vector = minifm.nn.utils.parameters_to_vector(model.parameters())
    minifm.nn.utils.vector_to_parameters(vector * 2, model.parameters())
    return vector, model[3].weight


def _loader_batch():
    from minifm.data import DataLoader, TensorDataset
    data = TensorDataset(minifm.randn(8, 2, device="cuda"), minifm.arange(8, device="cuda"))
    return next(iter(DataLoader(data, batch_size=4, shuffle=True)))


def _explain(name):
    import minifm.explain as E
    model, x = _small_cnn(), _image()
    if name == "Occlusion":
        return E.Occlusion(model).attribute(x, sliding_window_shapes=(3, 2, 2), target=1)
    if name == "NoiseTunnel":
        return E.NoiseTunnel(E.Saliency(model)).attribute(x, nt_samples=2, target=1)
    if name == "LayerGradCam":
        return E.LayerGradCam(model, model[0]).attribute(x, target=1)
    return getattr(E, name)(model).attribute(x, target=1)


BEYOND = {
    "gradcheck, gradgradcheck, hessian": _gradchecks,
    "GPT.generate (kv cache, top_k)": _gpt_generate,
    "prune l1 and random": _pruned,
    "parameters_to_vector and back": _vector_round_trip,
    "DataLoader over cuda tensors": _loader_batch,
    "a cuda tensor indexed by a cpu tensor": lambda: _image()[minifm.tensor([1, 0])],
    "masked_select, nonzero, unique": lambda: (
        minifm.masked_select(_image(), _image() > 0), minifm.nonzero(_image() > 0),
        minifm.unique(minifm.tensor([3, 1, 3], device="cuda"))),
    "interpolate bilinear, bicubic, nearest": lambda: tuple(
        minifm.nn.functional.interpolate(_image(), scale_factor=2, mode=mode)
        for mode in ("bilinear", "bicubic", "nearest")),
    **{f"explain.{name}": (lambda name=name: _explain(name)) for name in (
        "Saliency", "IntegratedGradients", "InputXGradient", "Occlusion", "NoiseTunnel",
        "LayerGradCam")},
}


@pytest.mark.parametrize("device", ["cuda"])
@pytest.mark.parametrize("name", list(BEYOND))
def test_library_features_run_on_cuda(name, device):
    """Autograd checks, generation, pruning, parameter vectors, data loading, indexing and
    the attribution methods, on CUDA tensors: they run, and give CUDA tensors back."""
    out = BEYOND[name]()
    for t in flat(list(out) if isinstance(out, (tuple, list)) else out):
        on_cuda(t, name)


def _second_order(info, sample, lib):
    """Gradients of <w, grad <v, f(x)>> with respect to the leaves x, through first-order
    gradients built with create_graph=True (test_ops.py's check, here on CUDA)."""
    leaves = []
    outs = [o for o in call_op(info, sample, lib, leaves, "cuda")
            if o.is_floating_point() and o.requires_grad]
    rng = np.random.default_rng(2)
    wrap = (lambda a: torch.from_numpy(a)) if lib == "torch" else \
        (lambda a: minifm.tensor(a, device="cuda"))
    autograd = torch.autograd if lib == "torch" else minifm.autograd
    v = [wrap(rng.standard_normal(tuple(o.shape))) for o in outs]
    firsts = autograd.grad(outs, leaves, v, create_graph=True, allow_unused=True)
    pairs = [(g, wrap(rng.standard_normal(tuple(g.shape)))) for g in firsts
             if g is not None and g.requires_grad]
    if not pairs:
        return [None] * len(leaves)
    total = sum((g * w).sum() for g, w in pairs)
    return autograd.grad(total, leaves, allow_unused=True)


@pytest.mark.parametrize("device", ["cuda"])
@pytest.mark.parametrize("info,dtype", [
    pytest.param(info, F64, id=f"{info.name}-float64") for info in OPS
    if info.differentiable and info.second_order and F64 in info.dtypes])
def test_op_second_order_on_cuda(info, dtype, device):
    """Gradients of gradients on CUDA equal PyTorch's: the backward formulas run on the
    differentiable array namespace there, which must keep to the array module too."""
    for sample in info.samples(Make(dtype)):
        ours = _second_order(info, sample, "minifm")
        theirs = _second_order(info, sample, "torch")
        for g, tg in zip(ours, theirs):
            if tg is None or g is None:
                continue
            on_cuda(g, sample)
            assert_close(g, tg, msg=lambda m: f"{sample}: {m}")


# ----------------------------------------------------------------------------- host round trips
def _gpt_step():
    from minifm.models.gpt import GPT, GPTConfig
    minifm.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=11, block_size=16, n_layer=2, n_head=2, n_embd=16,
                          dropout=0.1)).to("cuda")
    opt = minifm.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1)
    x, y = (minifm.randint(0, 11, (4, 16), device="cuda") for _ in range(2))

    def step():
        _, loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        minifm.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    return step


def _vision_step(name):
    def make():
        model, opt, scheduler = build("vision", name, "cuda")
        x, y = batch("vision", "cuda")

        def step():
            opt.zero_grad()
            minifm.nn.functional.cross_entropy(model(x), y).backward()
            minifm.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            scheduler.step()
        return step
    return make


# (to_device, to_host) of one step, each one known: the host reads are the index checks of
# the embeddings (token and position) and of cross_entropy's targets (CuPy would wrap a bad
# index silently); in the conv net, BatchNorm's num_batches_tracked.add_(1) makes its 1 a
# device scalar (cupy.asarray copies it). (adaptive_avg_pool2d's global pool tiles its input,
# so it runs as an average pool: its averaging matrices, two host copies a call, are gone.)
ROUND_TRIPS = {"GPT, AdamW": (_gpt_step, (0, 3)),
               **{f"conv net, {name}": (_vision_step(name), (1, 1)) for name in OPTIMIZERS}}


@pytest.mark.skipif(not CUPY_STAND_IN, reason="the stand-in counts transfers; CuPy does not")
@pytest.mark.parametrize("device", ["cuda"])
@pytest.mark.parametrize("name", list(ROUND_TRIPS))
def test_a_training_step_makes_no_host_round_trips(name, device):
    """A training step on CUDA copies nothing from the host, and reads back only what must
    be checked on the host: the stand-in counts every copy CuPy would make."""
    import cupy
    make, expected = ROUND_TRIPS[name]
    step = make()
    step()                                      # first-step state (optimizer moments) made
    cupy._transfers.clear()
    step()
    assert (cupy._transfers["to_device"], cupy._transfers["to_host"]) == expected
