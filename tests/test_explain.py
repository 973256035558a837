"""minifm.explain against Captum (captum.attr) on PyTorch twins with the same weights: an
MLP classifier, a small CNN (Grad-CAM, occlusion), and the GPT twin of
tests/torch_models.py (Integrated Gradients on the input embeddings). Then the properties
that hold whatever the oracle: IG's completeness (its convergence delta shrinks as
n_steps grows), the sanity check of Adebayo et al. (randomizing a trained model's weights
changes the maps), and attention rollout by its definition."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
captum_attr = pytest.importorskip("captum.attr")

import minifm  # noqa: E402
import minifm.explain as explain  # noqa: E402
import minifm.nn as nn  # noqa: E402
import torch_models as tm  # noqa: E402
from conftest import assert_close, to_numpy  # noqa: E402
from minifm.models import GPT, GPTConfig  # noqa: E402

TOL = dict(atol=2e-5, rtol=1e-4)


def twin_of(model, torch_model):
    """Copy the minifm model's weights into its PyTorch twin (same state_dict keys)."""
    torch_model.load_state_dict({k: torch.from_numpy(to_numpy(v).copy())
                                 for k, v in model.state_dict().items()})
    return torch_model.eval()


def mlp():
    minifm.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 3))
    twin = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3))
    return model.eval(), twin_of(model, twin)


def cnn():
    minifm.manual_seed(0)

    def layers(n):
        return [n.Conv2d(1, 4, 3, padding=1), n.ReLU(), n.Conv2d(4, 6, 3, padding=1),
                n.ReLU(), n.AdaptiveAvgPool2d(1), n.Flatten(), n.Linear(6, 3)]
    model = nn.Sequential(*layers(nn))
    return model.eval(), twin_of(model, torch.nn.Sequential(*layers(torch.nn)))


def data(*shape, seed=0):
    x = np.random.default_rng(seed).normal(size=shape).astype(np.float32)
    return minifm.tensor(x), torch.from_numpy(x)


def assert_same(ours, theirs, **tol):
    """Results of the same form: one Tensor, or tuples of them."""
    assert isinstance(ours, tuple) == isinstance(theirs, tuple)
    for a, b in zip(ours if isinstance(ours, tuple) else (ours,),
                    theirs if isinstance(theirs, tuple) else (theirs,)):
        assert_close(a, b, **(tol or TOL))


# ============================================================================ gradients
@pytest.mark.parametrize("abs", [True, False])
def test_saliency(abs):
    model, twin = mlp()
    x, tx = data(5, 6)
    ours = explain.Saliency(model).attribute(x, target=1, abs=abs)
    assert_same(ours, captum_attr.Saliency(twin).attribute(tx, target=1, abs=abs))
    assert not x.requires_grad  # the caller's tensor is left alone


@pytest.mark.parametrize("target", [2, [0, 1, 2, 1, 0], "tensor"])
def test_input_x_gradient_targets(target):
    model, twin = mlp()
    x, tx = data(5, 6, seed=1)
    ours_target, torch_target = target, target
    if target == "tensor":
        ours_target, torch_target = minifm.tensor([2, 0, 1, 1, 2]), torch.tensor([2, 0, 1, 1, 2])
    ours = explain.InputXGradient(model).attribute(x, target=ours_target)
    assert_same(ours, captum_attr.InputXGradient(twin).attribute(tx, target=torch_target))


def two_input_forward(layers):
    """f(x, y, w) = mlp(x * w + y), w an extra (batch) argument: tuple inputs."""
    return lambda x, y, w: layers(x * w + y)


def test_tuple_inputs_and_additional_forward_args():
    model, twin = mlp()
    (x, tx), (y, ty), (w, tw) = data(4, 6, seed=2), data(4, 6, seed=3), data(4, 6, seed=4)
    for ours_cls, torch_cls in ((explain.Saliency, captum_attr.Saliency),
                                (explain.IntegratedGradients, captum_attr.IntegratedGradients)):
        ours = ours_cls(two_input_forward(model)).attribute((x, y), target=0,
                                                            additional_forward_args=(w,))
        theirs = torch_cls(two_input_forward(twin)).attribute((tx, ty), target=0,
                                                              additional_forward_args=(tw,))
        assert_same(ours, theirs)


def test_forward_without_target_needs_one_output_per_example():
    model, _ = mlp()
    with pytest.raises(ValueError, match="target"):
        explain.Saliency(model).attribute(data(2, 6)[0])


# ============================================================================ Integrated Gradients
@pytest.mark.parametrize("method", ["gausslegendre", "riemann_left", "riemann_right",
                                    "riemann_middle", "riemann_trapezoid"])
def test_integrated_gradients_methods(method):
    model, twin = mlp()
    x, tx = data(3, 6, seed=5)
    ours, delta = explain.IntegratedGradients(model).attribute(
        x, target=2, n_steps=20, method=method, return_convergence_delta=True)
    theirs, their_delta = captum_attr.IntegratedGradients(twin).attribute(
        tx, target=2, n_steps=20, method=method, return_convergence_delta=True)
    assert_same(ours, theirs)
    assert_close(delta, their_delta, atol=1e-5, rtol=1e-3)


@pytest.mark.parametrize("baseline", [0.5, "tensor", "one example"])
def test_integrated_gradients_baselines_and_internal_batches(baseline):
    model, twin = mlp()
    x, tx = data(4, 6, seed=6)
    ours_b = torch_b = baseline
    if baseline == "tensor":
        ours_b, torch_b = data(4, 6, seed=7)
    elif baseline == "one example":
        ours_b, torch_b = data(1, 6, seed=8)
    kwargs = dict(target=[0, 1, 2, 0], n_steps=15, internal_batch_size=9,
                  return_convergence_delta=True)
    ours, delta = explain.IntegratedGradients(model).attribute(x, ours_b, **kwargs)
    theirs, their_delta = captum_attr.IntegratedGradients(twin).attribute(tx, torch_b, **kwargs)
    assert_same(ours, theirs)
    assert_close(delta, their_delta, atol=1e-5, rtol=1e-3)
    unbatched = explain.IntegratedGradients(model).attribute(x, ours_b, target=[0, 1, 2, 0],
                                                             n_steps=15)
    assert_same(ours, unbatched)


def test_integrated_gradients_local_attributions():
    model, twin = mlp()
    x, tx = data(2, 6, seed=9)
    ours = explain.IntegratedGradients(model, multiply_by_inputs=False).attribute(x, target=1)
    theirs = captum_attr.IntegratedGradients(twin, multiply_by_inputs=False).attribute(
        tx, target=1)
    assert_same(ours, theirs)


@pytest.mark.parametrize("method", ["gausslegendre", "riemann_right", "riemann_middle"])
def test_completeness_delta_shrinks_with_steps(method):
    model, _ = mlp()
    x = data(4, 6, seed=10)[0] * 3  # far from the baseline: a curved path integral
    ig = explain.IntegratedGradients(model)
    deltas = [float(ig.attribute(x, target=0, n_steps=n, method=method,
                                 return_convergence_delta=True)[1].abs().max())
              for n in (2, 8, 64)]
    assert deltas[0] > deltas[1] > deltas[2] or deltas[2] < 1e-5
    assert deltas[2] < 0.05 * deltas[0] or deltas[2] < 1e-5


def gpt_pair():
    config = dict(block_size=16, vocab_size=23, n_layer=2, n_head=2, n_embd=16, dropout=0.0)
    torch.manual_seed(0)
    twin = tm.GPT(tm.GPTConfig(**config)).eval()
    model = GPT(GPTConfig(**config)).eval()
    model.load_state_dict({k: minifm.tensor(v.detach().numpy())
                           for k, v in twin.state_dict().items()})
    return model, twin


def test_integrated_gradients_on_gpt_input_embeddings():
    """IG of the next-token logit on the token embeddings: minifm's inputs_embeds, and a
    forward hook that swaps the twin's token embeddings for Captum's scaled ones."""
    model, twin = gpt_pair()
    ids = np.random.default_rng(11).integers(0, 23, size=(1, 9))
    target = int(ids[0, -1])
    embeds = model.transformer.wte(minifm.tensor(ids)).detach()

    def torch_next_token_logits(emb):
        hook = twin.transformer.wte.register_forward_hook(lambda m, i, out: emb)
        try:
            return twin(torch.from_numpy(ids).expand(emb.shape[0], -1))[0][:, -1]
        finally:
            hook.remove()

    ours, delta = explain.IntegratedGradients(
        lambda e: model(inputs_embeds=e)[0][:, -1]).attribute(
        embeds, target=target, n_steps=16, return_convergence_delta=True)
    theirs, their_delta = captum_attr.IntegratedGradients(torch_next_token_logits).attribute(
        torch.from_numpy(embeds.numpy()), target=target, n_steps=16,
        return_convergence_delta=True)
    assert_same(ours, theirs, atol=1e-5, rtol=1e-3)
    assert_close(delta, their_delta, atol=1e-5, rtol=1e-2)
    assert abs(float(delta.item())) < 1e-2


# ============================================================================ occlusion
@pytest.mark.parametrize("window, strides, baseline, per_eval", [
    ((1, 3, 3), (1, 2, 2), 0.0, 1),
    ((1, 2, 4), 1, 0.25, 4),
    ((1, 4, 3), (1, 3, 3), "tensor", 2),  # windows sticking out past the edge
])
def test_occlusion_cnn(window, strides, baseline, per_eval):
    model, twin = cnn()
    x, tx = data(2, 1, 7, 7, seed=12)
    ours_b, torch_b = (baseline, baseline) if baseline != "tensor" else data(2, 1, 7, 7, seed=13)
    ours = explain.Occlusion(model).attribute(x, window, strides, ours_b, target=1,
                                              perturbations_per_eval=per_eval)
    theirs = captum_attr.Occlusion(twin).attribute(tx, window, strides, torch_b, target=1,
                                                   perturbations_per_eval=per_eval)
    assert_same(ours, theirs, atol=1e-6, rtol=1e-4)


def test_occlusion_tuple_inputs():
    model, twin = mlp()
    (x, tx), (y, ty), (w, tw) = data(3, 6, seed=14), data(3, 6, seed=15), data(3, 6, seed=16)
    ours = explain.Occlusion(two_input_forward(model)).attribute(
        (x, y), ((2,), (3,)), (1, 3), target=2, additional_forward_args=(w,))
    theirs = captum_attr.Occlusion(two_input_forward(twin)).attribute(
        (tx, ty), ((2,), (3,)), (1, 3), target=2, additional_forward_args=(tw,))
    assert_same(ours, theirs, atol=1e-6, rtol=1e-4)


# ============================================================================ NoiseTunnel
@pytest.fixture
def shared_noise(monkeypatch):
    """Captum's NoiseTunnel draws its noise from a minifm Generator, in the order and
    shape minifm.explain.NoiseTunnel documents, so both smooth the same noisy inputs."""
    generator = minifm.Generator(seed=7)

    def add_noise(input, stdev, nt_samples):
        noise = minifm.randn(input.shape[0] * nt_samples, *input.shape[1:],
                             generator=generator).numpy() * stdev
        return input.repeat_interleave(nt_samples, dim=0) + torch.from_numpy(noise)
    monkeypatch.setattr(captum_attr.NoiseTunnel, "_add_noise_to_input", staticmethod(add_noise))
    return lambda: minifm.Generator(seed=7)


@pytest.mark.parametrize("nt_type", ["smoothgrad", "smoothgrad_sq", "vargrad"])
def test_noise_tunnel_saliency(shared_noise, nt_type):
    model, twin = mlp()
    x, tx = data(3, 6, seed=17)
    ours = explain.NoiseTunnel(explain.Saliency(model)).attribute(
        x, nt_type=nt_type, nt_samples=6, nt_samples_batch_size=4, stdevs=0.3,
        generator=shared_noise(), target=[0, 1, 2], abs=False)
    theirs = captum_attr.NoiseTunnel(captum_attr.Saliency(twin)).attribute(
        tx, nt_type=nt_type, nt_samples=6, nt_samples_batch_size=4, stdevs=0.3,
        target=[0, 1, 2], abs=False)
    assert_same(ours, theirs, atol=1e-6, rtol=1e-4)


def test_noise_tunnel_integrated_gradients_with_delta(shared_noise):
    model, twin = mlp()
    x, tx = data(2, 6, seed=18)
    b, tb = data(2, 6, seed=19)
    ours, delta = explain.NoiseTunnel(explain.IntegratedGradients(model)).attribute(
        x, nt_samples=3, stdevs=0.2, generator=shared_noise(), baselines=b, target=1,
        n_steps=10, return_convergence_delta=True)
    theirs, their_delta = captum_attr.NoiseTunnel(captum_attr.IntegratedGradients(twin)).attribute(
        tx, nt_samples=3, stdevs=0.2, baselines=tb, target=1, n_steps=10,
        return_convergence_delta=True)
    assert_same(ours, theirs)
    assert_close(delta, their_delta, atol=1e-5, rtol=1e-3)


def test_noise_tunnel_without_noise_is_the_method_itself():
    model, _ = mlp()
    x = data(2, 6, seed=20)[0]
    plain = explain.Saliency(model).attribute(x, target=0)
    tunnel = explain.NoiseTunnel(explain.Saliency(model))
    assert_close(tunnel.attribute(x, nt_samples=3, stdevs=0.0, target=0), plain)
    assert_close(tunnel.attribute(x, nt_type="smoothgrad_sq", nt_samples=3, stdevs=0.0,
                                  target=0), plain * plain)
    assert float(tunnel.attribute(x, nt_type="vargrad", nt_samples=3, stdevs=0.0,
                                  target=0).abs().max()) < 1e-7


# ============================================================================ layers
@pytest.mark.parametrize("layer_index, to_input, relu", [(2, False, False), (3, False, True),
                                                         (2, True, False)])
def test_layer_grad_cam(layer_index, to_input, relu):
    model, twin = cnn()
    x, tx = data(3, 1, 8, 8, seed=21)
    ours = explain.LayerGradCam(model, model[layer_index]).attribute(
        x, target=[0, 2, 1], attribute_to_layer_input=to_input, relu_attributions=relu)
    theirs = captum_attr.LayerGradCam(twin, twin[layer_index]).attribute(
        tx, target=[0, 2, 1], attribute_to_layer_input=to_input, relu_attributions=relu)
    assert_same(ours, theirs, atol=1e-6, rtol=1e-4)
    assert_same(explain.LayerAttribution.interpolate(ours, (16, 16)),
                captum_attr.LayerAttribution.interpolate(theirs, (16, 16)), atol=1e-6,
                rtol=1e-4)


def test_layer_grad_cam_through_an_inplace_activation():
    """The DCGAN discriminator's LeakyReLU(inplace=True) after a conv: the activations
    recorded are the conv's output, not the activation's."""
    minifm.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.LeakyReLU(0.2, inplace=True), nn.Flatten(),
                          nn.Linear(48, 1)).eval()
    twin = twin_of(model, torch.nn.Sequential(
        torch.nn.Conv2d(1, 3, 3), torch.nn.LeakyReLU(0.2, inplace=True), torch.nn.Flatten(),
        torch.nn.Linear(48, 1)))
    x, tx = data(2, 1, 6, 6, seed=22)
    ours = explain.LayerGradCam(model, model[0]).attribute(x, target=0)
    assert_same(ours, captum_attr.LayerGradCam(twin, twin[0]).attribute(tx, target=0))
    acts = explain.LayerActivation(model, model[0]).attribute(x)
    assert float(acts.min()) < 0  # before the LeakyReLU
    assert_same(acts, captum_attr.LayerActivation(twin, twin[0]).attribute(tx))


@pytest.mark.parametrize("to_input", [False, True])
def test_layer_activation(to_input):
    model, twin = cnn()
    x, tx = data(2, 1, 5, 5, seed=23)
    ours = explain.LayerActivation(model, model[3]).attribute(x, attribute_to_layer_input=to_input)
    theirs = captum_attr.LayerActivation(twin, twin[3]).attribute(
        tx, attribute_to_layer_input=to_input)
    assert_same(ours, theirs, atol=1e-6, rtol=1e-5)
    assert not model[3]._forward_hooks and not model[3]._forward_pre_hooks  # hooks removed


# ============================================================================ sanity check
def rank_correlation(a, b):
    """Spearman's rank correlation of two maps (per example, then averaged)."""
    def ranks(m):
        return m.reshape(len(m), -1).argsort(axis=1).argsort(axis=1).astype(float)
    ra, rb = ranks(to_numpy(a)), ranks(to_numpy(b))
    ra -= ra.mean(axis=1, keepdims=True)
    rb -= rb.mean(axis=1, keepdims=True)
    return float(np.mean((ra * rb).sum(1) / np.sqrt((ra ** 2).sum(1) * (rb ** 2).sum(1))))


def trained_digit_mlp():
    """A small MLP trained on the 8x8 digits for a few hundred full-batch Adam steps."""
    from minifm.data import load_digits
    x, y = load_digits(8)["train"]
    x, y = minifm.tensor(x.reshape(len(x), -1)), minifm.tensor(y)
    minifm.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 32), nn.Tanh(), nn.Linear(32, 10))
    opt = minifm.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(150):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return model, x[:16], y[:16]


def test_sanity_check_randomized_weights_change_the_maps():
    """Adebayo et al. (2018): maps that survive randomizing the model's weights explain
    the input, not the model. Cascading randomization from the top layer down must
    decorrelate IG, saliency and Grad-CAM-free input x gradient maps, while the same
    model's maps agree with themselves."""
    model, x, y = trained_digit_mlp()
    target = y.tolist()
    methods = {"saliency": lambda m: explain.Saliency(m).attribute(x, target=target),
               "ig": lambda m: explain.IntegratedGradients(m).attribute(x, target=target,
                                                                         n_steps=20)}
    trained = {name: f(model) for name, f in methods.items()}
    assert rank_correlation(trained["ig"], methods["ig"](model)) > 0.999
    minifm.manual_seed(123)
    for layer in (model[2], model[0]):  # top layer first, then the one below
        layer.reset_parameters()
        for name, f in methods.items():
            assert rank_correlation(trained[name], f(model)) < 0.5, name


# ============================================================================ rollout
def test_attention_rollout_by_definition():
    model, _ = gpt_pair()
    ids = minifm.tensor(np.random.default_rng(24).integers(0, 23, size=(2, 7)))
    _, _, attentions = model(ids, output_attentions=True)
    rollout = explain.attention_rollout(attentions)
    expected = np.broadcast_to(np.eye(7), (2, 7, 7))
    for att in attentions:
        a = 0.5 * to_numpy(att.detach()).mean(axis=1) + 0.5 * np.eye(7)
        expected = a @ expected
    np.testing.assert_allclose(to_numpy(rollout), expected, atol=1e-6)
    np.testing.assert_allclose(to_numpy(rollout).sum(-1), 1.0, atol=1e-6)
    assert np.all(np.triu(to_numpy(rollout), 1) == 0)  # causal: no flow from the future
    single = explain.attention_rollout(attentions[:1])
    np.testing.assert_allclose(to_numpy(single),
                               0.5 * to_numpy(attentions[0].detach()).mean(1) + 0.5 * np.eye(7),
                               atol=1e-6)
