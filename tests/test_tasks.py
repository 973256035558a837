"""The BERT and DCGAN tasks and their helpers: the Frechet distance (against scipy's sqrtm
and closed forms), the PNG writer (read back by matplotlib and by parsing its chunks),
BERT's special tokens and batches, and both tasks through the Trainer, with bit-exact
resume: 2N steps == N steps, save, rebuild the task from the checkpoint, N more."""
import inspect
import struct
import zlib

import numpy as np
import pytest

import minifm
from minifm import backend
from minifm.train import TrainConfig, Trainer, read_checkpoint
from minifm.train.frechet import (
    DigitClassifier, frechet_distance, frechet_distance_of_features, gaussian_statistics,
)
from minifm.train.images import make_grid, save_image, write_png
from minifm.train.tasks import TASKS
from minifm.train.tasks.bert import CLS, MASK, PAD, SEP, BERTTask, BERTTaskConfig, SpecialTokens
from minifm.train.tasks.dcgan import DCGANTask, DCGANTaskConfig
from minifm.data import CharTokenizer


def random_spd(rng, d):
    a = rng.standard_normal((d, d))
    return a @ a.T + 0.1 * np.eye(d)


# ---------------------------------------------------------------- Frechet distance
def test_frechet_distance_of_identical_gaussians_is_zero():
    rng = np.random.default_rng(0)
    mu, sigma = rng.standard_normal(8), random_spd(rng, 8)
    assert frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-9)
    features = rng.standard_normal((500, 6))
    assert frechet_distance_of_features(features, features) == pytest.approx(0.0, abs=1e-9)


def test_frechet_distance_closed_form_for_diagonal_covariances():
    # commuting covariances: Tr((S1 S2)^1/2) = sum sqrt(a_i b_i)
    a, b = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    expected = 1.0 + 4.0 + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected)


def test_frechet_distance_matches_scipy_sqrtm():
    linalg = pytest.importorskip("scipy.linalg")
    rng = np.random.default_rng(1)
    for d in (1, 5, 32):
        mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
        s1, s2 = random_spd(rng, d), random_spd(rng, d)
        covmean = linalg.sqrtm(s1 @ s2).real  # the FID reference implementation's formula
        expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)
        assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-6, abs=1e-6)


def test_gaussian_statistics_and_shape_errors():
    x = np.random.default_rng(2).standard_normal((50, 3))
    mu, sigma = gaussian_statistics(x)
    np.testing.assert_allclose(mu, x.mean(0))
    np.testing.assert_allclose(sigma, np.cov(x.T))
    with pytest.raises(ValueError, match="frechet_distance.*mu2 \\(4,\\)"):
        frechet_distance(mu, sigma, np.zeros(4), np.eye(4))
    with pytest.raises(ValueError, match="gaussian_statistics"):
        gaussian_statistics(np.zeros(5))


def test_digit_classifier_features_are_its_penultimate_layer():
    net = DigitClassifier(8, hidden=16, num_features=6)
    x = minifm.randn(3, 1, 8, 8)
    with minifm.no_grad():
        assert net.features(x).shape == (3, 6)
        np.testing.assert_allclose(net.head(net.features(x)).numpy(), net(x).numpy())


# ---------------------------------------------------------------- PNG
def read_png_chunks(path):
    """(kind, data) of every chunk, checking the signature and each CRC."""
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, pos = [], 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        assert crc == zlib.crc32(kind + body), kind
        chunks.append((kind, body))
        pos += 12 + length
    return chunks


def decode_png(path):
    """The pixels of an 8-bit, unfiltered, non-interlaced PNG written by write_png."""
    chunks = read_png_chunks(path)
    assert [k for k, _ in chunks] == [b"IHDR", b"IDAT", b"IEND"]
    width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    assert depth == 8 and interlace == 0
    channels = {0: 1, 2: 3}[color]
    rows = np.frombuffer(zlib.decompress(chunks[1][1]), np.uint8).reshape(height, -1)
    assert (rows[:, 0] == 0).all()  # filter type "none" on every row
    pixels = rows[:, 1:].reshape(height, width, channels)
    return pixels[..., 0] if channels == 1 else pixels


@pytest.mark.parametrize("shape", [(5, 7), (4, 6, 3)])
def test_write_png_round_trips(tmp_path, shape):
    pixels = np.random.default_rng(3).integers(0, 256, shape, dtype=np.uint8)
    path = str(tmp_path / "x.png")
    write_png(path, pixels)
    np.testing.assert_array_equal(decode_png(path), pixels)
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        return
    back = plt.imread(path)  # floats in [0, 1], (H, W) or (H, W, 3)
    np.testing.assert_array_equal(np.round(back * 255).astype(np.uint8), pixels)


def test_write_png_refuses_other_arrays(tmp_path):
    with pytest.raises(ValueError, match="write_png: expected uint8.*float64"):
        write_png(str(tmp_path / "x.png"), np.zeros((2, 2)))


def test_make_grid_places_each_image_and_scales_values(tmp_path):
    images = np.stack([np.full((1, 2, 3), v) for v in (-1.0, 0.0, 1.0)])
    grid = make_grid(images, nrow=2, padding=1, value_range=(-1, 1), pad_value=0.25)
    assert grid.shape == (1, 2 * 3 + 1, 2 * 4 + 1)
    assert (grid[0, 1:3, 1:4] == 0.0).all() and (grid[0, 1:3, 5:8] == 0.5).all()
    assert (grid[0, 4:6, 1:4] == 1.0).all() and (grid[0, 4:6, 5:8] == 0.25).all()
    assert grid[0, 0, 0] == 0.25
    path = save_image(images, str(tmp_path / "g.png"), nrow=2, padding=1,
                      value_range=(-1, 1), scale=2)
    assert decode_png(path).shape == (14, 18)
    with pytest.raises(ValueError, match="make_grid: expected images of shape"):
        make_grid(np.zeros((2, 2, 4, 4)))


# ---------------------------------------------------------------- BERT pieces
def test_special_tokens_come_first_and_decode_by_name():
    tok = SpecialTokens(CharTokenizer.from_text("abc"))
    assert tok.vocab_size == 7
    assert tok.encode("cab") == [6, 4, 5]
    assert tok.decode([CLS, 4, MASK, 6, SEP, PAD]) == "[CLS]a[MASK]c[SEP][PAD]"


def small_text(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text(inspect.getsource(Trainer) * 2, encoding="utf-8")
    return str(path)


def tiny_bert_config(tmp_path, **overrides):
    return BERTTaskConfig(**{**dict(
        data=small_text(tmp_path), seq_len=16, batch_size=4, hidden_size=16, num_layers=1,
        num_heads=2, intermediate_size=32, eval_sequences=8, mlm_steps=3), **overrides})


def test_bert_batches_mask_text_and_plant_typos_in_half(tmp_path):
    task = BERTTask(tiny_bert_config(tmp_path, seq_len=22), str(tmp_path / "run"))
    gen = backend.Generator(seed=0)
    stream = task.splits["train"]
    typos = task._typos(stream, 64, gen)
    ids, labels = typos["input_ids"].numpy(), typos["labels"].numpy()
    assert ids.shape == (64, 22) and (ids[:, 0] == CLS).all() and (ids[:, -1] == SEP).all()
    assert 10 < labels.sum() < 54
    # each window with typos differs from every stretch of the text in exactly 2 (= 10% of
    # 20) tokens; the others occur in the text as they are
    windows = np.lib.stride_tricks.sliding_window_view(stream, 20)
    fewest = [(windows != row[1:-1]).sum(axis=1).min() for row in ids]
    np.testing.assert_array_equal(np.array(fewest), np.where(labels == 1, 2, 0))

    masked = task._masked_sequences(task._windows(stream, 64, gen), gen)
    inputs, targets = masked["input_ids"].numpy(), masked["labels"].numpy()
    assert (inputs[:, 0] == CLS).all() and (inputs[:, -1] == SEP).all()
    assert (targets[:, [0, -1]] == -100).all()
    chosen = targets != -100
    assert 0.05 < chosen.mean() < 0.3
    assert (inputs[chosen] == MASK).mean() > 0.5
    assert (inputs[~chosen] != MASK).all()


def test_bert_task_refuses_bad_settings(tmp_path):
    with pytest.raises(ValueError, match="BERTTaskConfig: tokenizer='word' must be one of 'char', 'bpe'"):
        tiny_bert_config(tmp_path, tokenizer="word")
    with pytest.raises(ValueError, match="BERTTaskConfig: seq_len=2 must be >= 3"):
        tiny_bert_config(tmp_path, seq_len=2)
    with pytest.raises(ValueError, match="hidden_size=16 must be divisible by num_heads=3"):
        tiny_bert_config(tmp_path, num_heads=3)
    with pytest.raises(ValueError, match="DCGANTaskConfig: image_size=12 must be a power of 2"):
        tiny_dcgan_config(image_size=12)
    with pytest.raises(ValueError, match="bert task: .* gives 30 tokens, too few for a window"):
        short = tmp_path / "short.txt"
        short.write_text("x" * 30)
        BERTTask(tiny_bert_config(tmp_path, data=str(short)), str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()  # nothing is written before training starts


# ---------------------------------------------------------------- through the Trainer
def tiny_dcgan_config(**overrides):
    return DCGANTaskConfig(**{**dict(
        image_size=8, nz=4, ngf=4, ndf=4, batch_size=512, grid_size=4,
        classifier_epochs=3), **overrides})


def train_config(out_dir, max_steps, decay_steps, grad_clip):
    return TrainConfig(max_steps=max_steps, eval_interval=max_steps, log_interval=1,
                       warmup_steps=1, lr_decay_steps=decay_steps, grad_clip=grad_clip,
                       out_dir=str(out_dir))


def quiet(*_):
    pass


def parameters_after_resume(task_cls, cfg, tmp_path, n, grad_clip):
    """(states after 2n uninterrupted steps, states after n steps + save + rebuild + n)."""
    straight = task_cls(cfg, str(tmp_path / "a"))
    Trainer(straight, train_config(tmp_path / "a", 2 * n, 2 * n, grad_clip), log=quiet).fit()

    first = task_cls(cfg, str(tmp_path / "b"))
    half = Trainer(first, train_config(tmp_path / "b", n, 2 * n, grad_clip), log=quiet)
    half.fit()
    ckpt = read_checkpoint(half.checkpoint_path)
    rebuilt = TASKS[ckpt["config"]["task"]["name"]].from_config(ckpt["config"]["task"],
                                                                 str(tmp_path / "b"))
    second = Trainer(rebuilt, train_config(tmp_path / "b", 2 * n, 2 * n, grad_clip), log=quiet)
    second.resume(half.checkpoint_path)
    summary = second.fit()
    assert summary["outcome"] == "finished" and summary["steps"] == 2 * n
    return straight, rebuilt


def assert_same_states(a, b):
    for name, module in a.modules.items():
        theirs = b.modules[name].state_dict()
        for key, value in module.state_dict().items():
            assert np.array_equal(value.numpy(), theirs[key].numpy()), f"{name}.{key}"


def test_bert_trains_through_both_phases_and_resumes_bit_exactly(tmp_path):
    cfg = tiny_bert_config(tmp_path)
    straight, rebuilt = parameters_after_resume(BERTTask, cfg, tmp_path, n=2, grad_clip=1.0)
    assert straight.batches_drawn == rebuilt.batches_drawn == 4  # mlm_steps=3: both phases ran
    assert_same_states(straight, rebuilt)
    # fine-tuning started from a copy of the pretrained encoder, then moved it alone
    pretrained, tuned = straight.mlm.bert.state_dict(), straight.classifier.bert.state_dict()
    assert not np.array_equal(pretrained["layers.0.intermediate.weight"].numpy(),
                              tuned["layers.0.intermediate.weight"].numpy())
    np.testing.assert_allclose(pretrained["layers.0.intermediate.weight"].numpy(),
                               tuned["layers.0.intermediate.weight"].numpy(), atol=0.05)

    metrics = straight.evaluate("val")
    assert metrics["loss"] == metrics["cls_loss"]
    for key in ("mlm_accuracy", "unigram_accuracy", "cls_accuracy", "majority_accuracy"):
        assert 0.0 <= metrics[key] <= 1.0
    assert metrics["majority_accuracy"] >= 0.5
    text = straight.sample(seed=1)
    assert "[MASK]" in text and "masked tokens right" in text
    assert straight.metric_label("loss") == "loss (= cls_loss, fine-tuning)"


def test_dcgan_trains_and_resumes_bit_exactly_across_epochs(tmp_path):
    cfg = tiny_dcgan_config()  # 1437 training digits: 2 batches of 512 per epoch
    straight, rebuilt = parameters_after_resume(DCGANTask, cfg, tmp_path, n=3, grad_clip=None)
    assert_same_states(straight, rebuilt)

    path = straight.sample(seed=0, path=str(tmp_path / "grid.png"))
    assert decode_png(path).shape == (8 * (8 + 2 * 2), 8 * (4 * 8 + 5 * 2))  # one row of 4, 8x zoom
    metrics = straight.evaluate("test")
    assert metrics["frechet_distance_uniform_noise"] > metrics["frechet_distance_real"]
    assert metrics["frechet_distance"] > 0


def test_dcgan_evaluation_leaves_every_generator_alone(tmp_path):
    task = DCGANTask(tiny_dcgan_config(classifier_epochs=1), str(tmp_path))
    before = backend.get_rng_state(), task.generator.get_state()
    first = task.evaluate("val")  # trains the feature classifier on the way
    assert (backend.get_rng_state(), task.generator.get_state()) == before
    assert task.evaluate("val") == first


def test_dcgan_generator_step_needs_the_discriminator_step_first(tmp_path):
    task = DCGANTask(tiny_dcgan_config(), str(tmp_path), load_data=False)
    z = minifm.randn(2, 4, 1, 1)
    with pytest.raises(RuntimeError, match="step D before G"):
        task.loss("G", (minifm.zeros(2, 1, 8, 8), z))
