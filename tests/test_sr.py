"""Super-resolution: ESPCN and SRGAN's discriminator against PyTorch twins, the photo data
(luma, regions, bicubic downscaling, aligned flipped patches), the task's baselines
against scikit-image, a bit-exact resume, and train/eval/sample through the command
line."""
from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")
pytest.importorskip("PIL")

import minifm  # noqa: E402
import torch_models as tm  # noqa: E402
from conftest import assert_close, assert_grads_close, load_from_torch  # noqa: E402
from minifm import backend  # noqa: E402
from minifm.cli import main  # noqa: E402
from minifm.data.photos import (  # noqa: E402
    ROW_BANDS, downscale, load_sample_photos, photo_regions, random_patches, rgb_to_y,
)
from minifm.models import ESPCN, SRDiscriminator  # noqa: E402
from minifm.train import TrainConfig, Trainer, read_checkpoint  # noqa: E402
from minifm.train.settings import ConfigError  # noqa: E402
from minifm.train.tasks import TASKS  # noqa: E402
from minifm.train.tasks.sr import SRTask, SRTaskConfig  # noqa: E402
from test_cli import refused  # noqa: E402

TINY = dict(lr_patch_size=8, batch_size=4, n1=8, n2=4, crop_size=16)


@pytest.fixture(scope="module")
def regions():
    return photo_regions("y", 2)


# ---------------------------------------------------------------- models
@pytest.mark.parametrize("scale, channels", [(2, 1), (3, 3)])
def test_espcn_forward_backward_matches_torch(scale, channels):
    torch.manual_seed(0)
    twin = tm.ESPCN(scale, channels, n1=16, n2=8)
    model = load_from_torch(ESPCN(scale, channels, n1=16, n2=8), twin)
    x = np.random.default_rng(0).random((2, channels, 9, 7)).astype(np.float32)
    target = np.random.default_rng(1).random((2, channels, 9 * scale, 7 * scale))
    out, t_out = model(minifm.tensor(x)), twin(torch.from_numpy(x))
    assert out.shape == (2, channels, 9 * scale, 7 * scale)
    assert_close(out, t_out, atol=1e-5, rtol=1e-4)
    loss = minifm.nn.functional.mse_loss(out, minifm.tensor(target.astype(np.float32)))
    t_loss = torch.nn.functional.mse_loss(t_out, torch.from_numpy(target.astype(np.float32)))
    loss.backward()
    t_loss.backward()
    assert_grads_close(model, twin, atol=1e-6, rtol=1e-4)


def test_espcn_names_and_init_follow_torch():
    model = ESPCN(2, 1)
    assert list(model.state_dict()) == list(tm.ESPCN(2, 1).state_dict())
    bound = 1 / np.sqrt(1 * 5 * 5)  # PyTorch's Conv2d default: U(-1/sqrt(fan_in), ...)
    weight = model.conv1.weight.detach().numpy()
    assert np.abs(weight).max() <= bound and np.abs(weight).max() > 0.9 * bound


def test_sr_discriminator_matches_torch_in_train_mode():
    torch.manual_seed(0)
    twin = tm.SRDiscriminator(1, ndf=4)
    model = load_from_torch(SRDiscriminator(1, ndf=4), twin)
    x = np.random.default_rng(0).random((3, 1, 16, 16)).astype(np.float32)
    logits, t_logits = model(minifm.tensor(x)), twin(torch.from_numpy(x))
    assert logits.shape == (3,)
    assert_close(logits, t_logits, atol=1e-5, rtol=1e-4)
    logits.sum().backward()
    t_logits.sum().backward()
    assert_grads_close(model, twin, atol=1e-5, rtol=1e-3)


# ---------------------------------------------------------------- data
def test_luma_is_matlab_rgb2ycbcr():
    color = pytest.importorskip("skimage.color")
    rgb = np.random.default_rng(0).random((5, 7, 3))
    expected = color.rgb2ycbcr(rgb)[..., 0] / 255.0
    np.testing.assert_allclose(rgb_to_y(rgb.transpose(2, 0, 1))[0], expected, rtol=1e-12)


def test_regions_are_disjoint_bands_of_both_photos(regions):
    rows = [r for bands in ROW_BANDS.values() for top, bottom in bands for r in range(top, bottom)]
    assert len(rows) == len(set(rows)) == 426  # every row once, none shared between splits
    photos = list(load_sample_photos("y").values())
    assert [hr.shape for _, hr in regions["test"]] == [(1, 96, 640)] * 2
    assert [lr.shape for lr, _ in regions["val"]] == [(1, 32, 320)] * 2
    for photo, (lr, hr) in zip(photos, regions["test"]):
        assert np.array_equal(hr, photo[:, 224:320])
        assert lr.dtype == np.float32 and 0 <= lr.min() and lr.max() <= 1


def test_downscaling_is_torch_bicubic_clipped(regions):
    lr, hr = regions["val"][1]
    expected = torch.nn.functional.interpolate(torch.from_numpy(hr[None]), size=(32, 320),
                                               mode="bicubic", align_corners=False)
    np.testing.assert_allclose(lr, expected.clamp(0, 1).numpy()[0], atol=1e-6)


def test_random_patches_are_aligned_and_flipped_together(regions):
    lr, hr = random_patches(regions["train"], 8, 64, backend.Generator(seed=0))
    assert lr.shape == (64, 1, 8, 8) and hr.shape == (64, 1, 16, 16)
    # Bicubic's 4-tap kernel is symmetric: away from the patch's edge, downscaling the
    # high-res patch gives the low-res one, flipped or not, when the two are aligned.
    for a, b in zip(lr, hr):
        np.testing.assert_allclose(downscale(b, 2)[:, 1:-1, 1:-1], a[:, 1:-1, 1:-1], atol=1e-6)
    again = random_patches(regions["train"], 8, 64, backend.Generator(seed=0))
    assert np.array_equal(lr, again[0]) and np.array_equal(hr, again[1])
    # some patches are flipped: a flipped one is found in no region unflipped
    sources = [region for region, _ in regions["train"]]

    def found(patch):
        return any((np.lib.stride_tricks.sliding_window_view(s[0], (8, 8)) == patch[0])
                   .all(axis=(2, 3)).any() for s in sources)

    assert 0 < sum(found(p) for p in lr[:16]) < 16


def test_config_refuses_bad_settings():
    with pytest.raises(ConfigError, match="lr_patch_size=54 does not fit the narrowest "
                                          "training band: 53"):
        SRTaskConfig(lr_patch_size=54)
    with pytest.raises(ConfigError, match="crop_size=97 must be between"):
        SRTaskConfig(crop_size=97)
    with pytest.raises(ConfigError, match="scale=5 must be one of"):
        SRTaskConfig(scale=5)


# ---------------------------------------------------------------- the task
def test_baselines_equal_scikit_image_on_torch_bicubic(tmp_path):
    skm = pytest.importorskip("skimage.metrics")
    task = SRTask(SRTaskConfig(**TINY), str(tmp_path))
    metrics = task.evaluate("test")
    psnrs, ssims = [], []
    for lr, hr in task.regions["test"]:
        up = torch.nn.functional.interpolate(torch.from_numpy(lr[None]), scale_factor=2,
                                             mode="bicubic", align_corners=False)
        up = up.clamp(0, 1).numpy()[0, 0, 2:-2, 2:-2]
        psnrs.append(skm.peak_signal_noise_ratio(hr[0, 2:-2, 2:-2], up, data_range=1.0))
        ssims.append(skm.structural_similarity(hr[0, 2:-2, 2:-2], up, data_range=1.0,
                                               gaussian_weights=True, sigma=1.5,
                                               use_sample_covariance=False))
    assert metrics["psnr_bicubic"] == pytest.approx(np.mean(psnrs), abs=1e-4)
    assert metrics["ssim_bicubic"] == pytest.approx(np.mean(ssims), abs=1e-5)
    assert metrics["psnr_nearest"] < metrics["psnr_bicubic"]
    assert metrics["psnr_china_bicubic"] == pytest.approx(psnrs[0], abs=1e-4)
    assert metrics["psnr_flower_bicubic"] == pytest.approx(psnrs[1], abs=1e-4)
    assert set(metrics) == {f"{m}{s}" for m in ("loss", "psnr", "ssim", "psnr_china",
                                                "psnr_flower")
                            for s in ("", "_nearest", "_bicubic")}


def quiet(*_):
    pass


def train_config(out_dir, max_steps):
    return TrainConfig(max_steps=max_steps, eval_interval=max_steps, log_interval=1,
                       warmup_steps=1, lr_decay_steps=4, grad_clip=None, out_dir=str(out_dir))


@pytest.mark.slow  # 4 + 2 + 2 steps and 4 evaluations each: 10-20 s
@pytest.mark.parametrize("adversarial_weight", [0.0, 1e-3])
def test_sr_resumes_bit_exactly(tmp_path, adversarial_weight):
    cfg = SRTaskConfig(**TINY, adversarial_weight=adversarial_weight)
    straight = SRTask(cfg, str(tmp_path / "a"))
    Trainer(straight, train_config(tmp_path / "a", 4), log=quiet, evaluate_test=False).fit()

    half = Trainer(SRTask(cfg, str(tmp_path / "b")), train_config(tmp_path / "b", 2),
                   log=quiet, evaluate_test=False)
    half.fit()
    ckpt = read_checkpoint(half.checkpoint_path)
    assert set(ckpt["modules"]) == ({"model", "discriminator"} if adversarial_weight
                                    else {"model"})
    rebuilt = TASKS["sr"].from_config(ckpt["config"]["task"], str(tmp_path / "b"))
    second = Trainer(rebuilt, train_config(tmp_path / "b", 4), log=quiet, evaluate_test=False)
    second.resume(half.checkpoint_path)
    assert second.fit()["steps"] == 4
    for name, module in straight.modules.items():
        resumed = rebuilt.modules[name].state_dict()
        for key, value in module.state_dict().items():
            assert np.array_equal(value.numpy(), resumed[key].numpy()), key


def test_init_from_starts_a_new_run_with_a_checkpoints_espcn(tmp_path):
    first = SRTask(SRTaskConfig(**TINY), str(tmp_path / "a"))
    trainer = Trainer(first, train_config(tmp_path / "a", 1), log=quiet, evaluate_test=False)
    trainer.save()
    path = trainer.checkpoint_path
    gan = SRTask(SRTaskConfig(**TINY, seed=7, adversarial_weight=1e-3, init_from=path),
                 str(tmp_path / "b"))
    for key, value in first.model.state_dict().items():
        assert np.array_equal(value.numpy(), gan.model.state_dict()[key].numpy()), key
    with pytest.raises(ValueError, match="its n1=8 differs from this run's n1=16"):
        SRTask(SRTaskConfig(**{**TINY, "n1": 16}, init_from=path), str(tmp_path / "c"))


def test_train_eval_sample_from_the_command_line(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "sr", "--out-dir", str(out), "--lr-patch-size", "8",
                 "--batch-size", "4", "--n1", "8", "--n2", "4", "--max-steps", "2",
                 "--eval-interval", "2", "--samples", "0"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["best_val"]["metric"] == "loss"
    assert summary["test"]["psnr_bicubic"] > summary["test"]["psnr_nearest"] > 20
    checkpoint = str(out / "checkpoint.safetensors")
    assert main(["eval", "--checkpoint", checkpoint]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["step"] == 2 and report["split"] == "test"
    assert report["psnr"] == pytest.approx(summary["test"]["psnr"])
    picture = tmp_path / "crops.png"
    assert main(["sample", "--checkpoint", checkpoint, "--out", str(picture)]) == 0
    assert capsys.readouterr().out.strip() == str(picture)
    data = picture.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = np.frombuffer(data[16:24], dtype=">u4")
    # one row per photo, four 96-pixel crops shown 2x, 4 pixels of padding (2x) around each
    assert (width, height) == (2 * (4 * 96 + 5 * 4), 2 * (2 * 96 + 3 * 4))
    refused(capsys, ["explain", "--checkpoint", checkpoint, "--text", "x"],
            "is a sr one")


@pytest.mark.slow  # two runs of 2 steps, 3 evaluations each: about 20 s
@pytest.mark.parametrize("device", ["cuda"])  # named so that conftest counts it
def test_sr_trains_on_cuda_as_on_the_cpu(tmp_path, device):
    """Two SRGAN steps, the evaluation and the sample on device="cuda" (a GPU, or the CuPy
    stand-in) give the CPU's weights and metrics."""
    cfg = SRTaskConfig(**TINY, adversarial_weight=1e-3)
    runs = {}
    for where in ("cpu", device):
        task = SRTask(cfg, str(tmp_path / where), device=where)
        Trainer(task, train_config(tmp_path / where, 2), log=quiet, evaluate_test=False).fit()
        runs[where] = task
        assert task.sample().endswith("samples_seed0.png")
    cpu, cuda = runs["cpu"], runs[device]
    for key, value in cpu.model.state_dict().items():
        assert_close(cuda.model.state_dict()[key], value, atol=1e-6, rtol=1e-5, msg=key)
    expected = cpu.evaluate("test")
    assert cuda.evaluate("test") == pytest.approx(expected, rel=1e-5)
