"""The command line as a user meets it: every mistake of the user's ends in one plain
message and exit code 2 with the run folder untouched (checked by the sha256 of every
file in it); runs are never destroyed by accident; resume, sample and eval work from any
folder. Most tests call minifm.cli.main in-process; those about exit codes and
tracebacks run `python -m minifm` as a subprocess."""
import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from minifm.cli import build_parser, main
from minifm.data import min_corpus_tokens
from minifm.train import read_checkpoint

TINY_GPT = ["--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--block-size", "16",
            "--batch-size", "4", "--eval-iters", "1", "--warmup-steps", "1",
            "--eval-interval", "2", "--max-steps", "4", "--samples", "0"]


def snapshot(folder):
    """{relative path: sha256} of every file under `folder` ({} if there is none)."""
    sums = {}
    for root, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                sums[os.path.relpath(path, folder)] = hashlib.sha256(f.read()).hexdigest()
    return sums


def train_gpt(corpus, out, *extra):
    return main(["train", "gpt", "--data", str(corpus), "--out-dir", str(out), *TINY_GPT, *extra])


def refused(capsys, argv, message):
    """Run argv; assert exit code 2 and `message` in the one error line on stderr."""
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as exit:  # argparse's own errors (unknown option, bad choice)
        code = exit.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert message in err and len(err.splitlines()) <= 2, err
    assert "Traceback" not in err
    return err


def run_cli(*args, cwd=None, env=None):
    return subprocess.run([sys.executable, "-m", "minifm", *args], capture_output=True,
                          text=True, cwd=cwd, env={**os.environ, **(env or {})}, timeout=120)


# ---------------------------------------------------------------- options
@pytest.mark.parametrize("options, message", [
    (["--n-layer", "0"], "--n-layer=0 must be >= 1"),
    (["--n-head", "0"], "--n-head=0 must be >= 1"),
    (["--n-embd", "10", "--n-head", "3"], "--n-embd=10 must be divisible by --n-head=3"),
    (["--block-size", "0"], "--block-size=0 must be >= 1"),
    (["--batch-size", "-1"], "--batch-size=-1 must be >= 1"),
    (["--val-frac", "1"], "--val-frac=1.0 must be in [0, 1)"),
    (["--dropout", "-0.1"], "--dropout=-0.1 must be in [0, 1)"),
    (["--grad-clip", "0"], "--grad-clip=0.0 must be a finite number > 0"),
    (["--eval-iters", "0"], "--eval-iters=0 must be >= 1"),
    (["--log-interval", "0"], "--log-interval=0 must be >= 1"),
    (["--lr", "0"], "--learning-rate=0.0 must be a finite number > 0"),
    (["--lr", "nan"], "--learning-rate=nan must be a finite number"),
    (["--min-lr-ratio", "inf"], "--min-lr-ratio=inf must be a finite number"),
    (["--encoding", "klingon"], "--encoding='klingon' is not a known text encoding"),
    (["--tokenizer", "word"], "--tokenizer: invalid choice: 'word' (choose from"),
    (["--nan-policy", "ignore"], "--nan-policy: invalid choice: 'ignore' (choose from"),
    (["--early-stopping-metric", "accuracy"], "--early-stopping-metric: invalid choice: 'accuracy' (choose from"),
    (["--lr-decay", "100"], "unrecognized arguments: --lr-decay"),  # no abbreviations
    (["--samples", "-1"], "--samples must be >= 0"),
    (["--device", "cuda"], "device 'cuda' needs CuPy and a CUDA GPU"),
])
def test_bad_options_are_refused_before_anything_is_written(tmp_path, corpus, capsys,
                                                            options, message):
    if options == ["--device", "cuda"]:
        pytest.importorskip("minifm").cuda.is_available() and pytest.skip("a GPU is here")
    out = tmp_path / "run"
    refused(capsys, ["train", "gpt", "--data", str(corpus), "--out-dir", str(out), *TINY_GPT,
                     *options], message)
    assert not out.exists()


def test_options_are_never_abbreviations_and_lr_is_learning_rate():
    args = build_parser().parse_args(["train", "gpt", "--lr", "100"])
    assert args.learning_rate == 100 and args.lr_decay_steps is None
    assert build_parser().parse_args(["train", "gpt", "--grad-clip", "off"]).grad_clip is None


def test_help_shows_meaning_default_and_choices_and_version_exists(capsys):
    with pytest.raises(SystemExit):
        main(["train", "bert", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--tokenizer {char,bpe}" in text
    assert "--early-stopping-metric {loss,mlm_loss,cls_loss}" in text
    assert "--max-steps INT training steps in all (a resumed run may raise it) (default: 600)" in text
    assert "--learning-rate FLOAT, --lr FLOAT" in text
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.startswith("minifm ")


def test_a_user_error_is_one_plain_line_and_a_traceback_needs_debug(tmp_path, corpus):
    args = ["train", "gpt", "--data", str(corpus), "--out-dir", str(tmp_path / "run"),
            "--n-layer", "0"]
    done = run_cli(*args)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.splitlines() == ["minifm train: error: --n-layer=0 must be >= 1",
                                        "(run with --debug for the traceback)"]
    for debug in (dict(args=["--debug"]), dict(env={"MINIFM_DEBUG": "1"})):
        done = run_cli(*args, *debug.get("args", []), env=debug.get("env"))
        assert done.returncode == 1 and "Traceback" in done.stderr
        assert "ConfigError: GPTTaskConfig: n_layer=0 must be >= 1" in done.stderr
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------- data
def test_data_that_is_missing_not_utf8_or_too_short(tmp_path, capsys):
    out = tmp_path / "run"
    base = ["train", "gpt", "--out-dir", str(out), *TINY_GPT]
    refused(capsys, base + ["--data", str(tmp_path / "nope.txt")], "no text file at")
    latin = tmp_path / "latin.txt"
    latin.write_bytes(("caf\xe9 au lait. " * 100).encode("latin-1"))
    refused(capsys, base + ["--data", str(latin)],
            f"{str(latin)!r} is not valid utf-8: byte 0xe9 at offset 3")
    short = tmp_path / "short.txt"
    short.write_text("too short for a block of 16\n" * 3)
    err = refused(capsys, base + ["--data", str(short)], "gives 84 tokens, too few")
    assert f"it needs at least {min_corpus_tokens(17, 0.1, 0.05)} tokens" in err
    assert "use more text or a smaller block_size" in err
    assert not out.exists()
    assert main(base + ["--data", str(latin), "--encoding", "latin-1"]) == 0


# ---------------------------------------------------------------- run folders
def test_an_existing_run_is_never_replaced_by_accident(tmp_path, corpus, capsys):
    out = tmp_path / "run"
    assert train_gpt(corpus, out) == 0
    before = snapshot(out)
    assert {"checkpoint.safetensors", "best.safetensors", "metrics.csv", "metrics.jsonl",
            "summary.json"} <= set(before)
    refused(capsys, ["train", "gpt", "--data", str(corpus), "--out-dir", str(out), *TINY_GPT],
            "already holds a run (checkpoint.safetensors); give --resume to continue it, "
            "--overwrite to replace it")
    refused(capsys, ["train", "gpt", "--out-dir", str(out), "--resume", "--overwrite"],
            "give one of them")
    refused(capsys, ["train", "gpt", "--data", str(corpus), "--out-dir", str(out), *TINY_GPT,
                     "--overwrite", "--n-layer", "0"], "--n-layer=0 must be >= 1")
    refused(capsys, ["train", "gpt", "--out-dir", str(tmp_path / "empty"), "--resume"],
            "nothing to resume")
    assert snapshot(out) == before
    assert train_gpt(corpus, out, "--overwrite", "--seed", "7") == 0
    assert read_checkpoint(str(out / "checkpoint.safetensors"))["config"]["task"]["seed"] == 7


def test_resume_keeps_the_checkpoints_settings(tmp_path, corpus, capsys):
    out = tmp_path / "run"
    assert train_gpt(corpus, out) == 0
    before = snapshot(out)
    resume = ["train", "gpt", "--out-dir", str(out), "--resume"]
    refused(capsys, resume + ["--n-layer", "2", "--max-steps", "6"],
            "--n-layer=2 differs from the checkpoint's --n-layer=1: a resumed run keeps the "
            "model, data and tokenizer settings of its checkpoint")
    refused(capsys, resume + ["--warmup-steps", "3", "--max-steps", "6"],
            "--warmup-steps=3 differs from the checkpoint's --warmup-steps=1")
    refused(capsys, resume + ["--max-steps", "4"], "the checkpoint is at step 4, and "
            "--max-steps=4 leaves nothing to train")
    assert snapshot(out) == before
    # a temporary file left by a killed save disappears; the settings come from the checkpoint
    (out / ".checkpoint.safetensors.0123456789abcdef.tmp").write_bytes(b"half a file")
    assert main(resume + ["--max-steps", "6", "--n-layer", "1"]) == 0
    assert not [name for name in os.listdir(out) if name.endswith(".tmp")]
    ckpt = read_checkpoint(str(out / "checkpoint.safetensors"))
    assert ckpt["trainer"]["step"] == 6 and ckpt["config"]["task"]["n_layer"] == 1
    steps = [json.loads(line)["step"] for line in open(out / "metrics.jsonl")]
    assert steps == sorted(steps)


def test_sample_and_eval_work_from_any_folder_and_write_nowhere_else(tmp_path, corpus,
                                                                     capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert train_gpt(os.path.relpath(corpus), "run", "--test-frac", "0") == 0
    ckpt = read_checkpoint("run/checkpoint.safetensors")
    assert ckpt["config"]["task"]["data"] == str(corpus)
    assert ckpt["config"]["trainer"]["out_dir"] == str(tmp_path / "run")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    checkpoint = str(tmp_path / "run" / "checkpoint.safetensors")
    before = snapshot(tmp_path)
    capsys.readouterr()
    assert main(["sample", "--checkpoint", checkpoint, "--prompt", "line",
                 "--max-new-tokens", "10"]) == 0
    assert capsys.readouterr().out.startswith("line")
    assert main(["eval", "--checkpoint", checkpoint, "--split", "val"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["step"] == 4 and result["split"] == "val" and result["loss"] > 0
    refused(capsys, ["eval", "--checkpoint", checkpoint], "the run has no test split")
    assert snapshot(tmp_path) == before


def test_sampling_options_are_checked(tmp_path, corpus, capsys):
    out = tmp_path / "run"
    assert train_gpt(corpus, out) == 0
    sample = ["sample", "--checkpoint", str(out / "checkpoint.safetensors"),
              "--max-new-tokens", "20"]
    refused(capsys, sample + ["--temperature", "-1"], "temperature must be >= 0")
    refused(capsys, sample + ["--top-k", "0"], "top_k must be >= 1")
    refused(capsys, sample[:-1] + ["-1"], "max_new_tokens must be >= 0")
    refused(capsys, sample + ["--prompt", "caf\xe9"], "character '\xe9' (U+00E9) at position 3 "
            "is not in the vocabulary")
    refused(capsys, sample + ["--out", "x.png"], "path: not an option of sampling a gpt model")
    refused(capsys, ["sample", "--checkpoint", str(out / "metrics.csv")], "metrics.csv")
    refused(capsys, ["sample", "--checkpoint", str(out / "nope.safetensors")], "nope.safetensors")
    greedy = []
    for seed in ("1", "2"):
        assert main(sample + ["--temperature", "0", "--seed", seed]) == 0
        greedy.append(capsys.readouterr().out)
    assert greedy[0] == greedy[1]


def test_progress_shows_speed_and_bert_names_its_changing_loss(tmp_path, corpus, capsys):
    out = tmp_path / "bert"
    assert main(["train", "bert", "--data", str(corpus), "--out-dir", str(out),
                 "--seq-len", "16", "--batch-size", "4", "--hidden-size", "16",
                 "--num-layers", "1", "--num-heads", "2", "--intermediate-size", "32",
                 "--eval-sequences", "8", "--mlm-steps", "3", "--max-steps", "6",
                 "--eval-interval", "3", "--log-interval", "1", "--samples", "0"]) == 0
    captured = capsys.readouterr()
    assert "ms/step" in captured.err and "tokens/s" in captured.err and "left" in captured.err
    assert "step 0: val loss (= mlm_loss, pretraining)" in captured.err
    assert "step 6: val loss (= cls_loss, fine-tuning)" in captured.err
    assert json.loads(captured.out)["best_val"]["metric"].startswith("loss (= ")
    assert main(["sample", "--checkpoint", str(out / "checkpoint.safetensors"),
                 "--prompt", "the lazy dog"]) == 0
    text = capsys.readouterr().out
    assert "[MASK]" in text and "masked tokens right" in text


def test_dcgan_samples_into_its_run_folder_or_out(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "gan"
    assert main(["train", "dcgan", "--out-dir", str(out), "--image-size", "8", "--nz", "4",
                 "--ngf", "4", "--ndf", "4", "--batch-size", "64", "--grid-size", "4",
                 "--classifier-epochs", "1", "--max-steps", "2", "--eval-interval", "2",
                 "--samples", "0"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["best_val"]["metric"] == "frechet_distance"
    assert summary["best_val"]["checkpoint"] == str(out / "best.safetensors")
    checkpoint = str(out / "checkpoint.safetensors")
    assert main(["sample", "--checkpoint", checkpoint]) == 0
    assert capsys.readouterr().out.strip() == str(out / "samples_seed0.png")
    assert main(["sample", "--checkpoint", checkpoint, "--out", "grid.png", "--seed", "3"]) == 0
    assert (tmp_path / "grid.png").exists() and (out / "samples_seed0.png").exists()
    refused(capsys, ["sample", "--checkpoint", checkpoint, "--prompt", "x"],
            "prompt: not an option of sampling a dcgan model")


@pytest.mark.slow
def test_a_kill_at_any_moment_leaves_a_loadable_checkpoint(tmp_path, corpus):
    out = tmp_path / "run"
    args = ["train", "gpt", "--data", str(corpus), "--out-dir", str(out), *TINY_GPT[:-6],
            "--eval-interval", "1", "--log-interval", "1", "--samples", "0"]
    process = subprocess.Popen([sys.executable, "-m", "minifm", *args, "--max-steps", "10000"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not (out / "checkpoint.safetensors").exists():
        time.sleep(0.05)
    time.sleep(1.0)
    process.send_signal(signal.SIGKILL)
    process.wait()
    step = read_checkpoint(str(out / "checkpoint.safetensors"))["trainer"]["step"]
    done = run_cli(*args, "--resume", "--max-steps", str(step + 3))
    assert done.returncode == 0, done.stderr
    assert not [name for name in os.listdir(out) if name.endswith(".tmp")]
    rows = [json.loads(line) for line in open(out / "metrics.jsonl")]
    keys = [(r["step"], r["split"]) for r in rows]
    assert len(keys) == len(set(keys)) and max(k[0] for k in keys) == step + 3


def test_resume_accepts_a_path_setting_given_relative_again(tmp_path, monkeypatch):
    """The configs store paths absolute; giving the same path relative on resume is the same
    setting, another path is refused."""
    from minifm.train.commands import resumed_settings
    from minifm.train.settings import ConfigError

    monkeypatch.chdir(tmp_path)
    ckpt = {"config": {"task": {"name": "cgan", "classifier": str(tmp_path / "runs" / "resnet")},
                       "trainer": {"max_steps": 10}}, "trainer": {"step": 2}}
    train = {"max_steps": 10, "out_dir": str(tmp_path / "run"), "checkpoint_name": "c"}
    task_config, _ = resumed_settings(ckpt, {"classifier": "runs/resnet"}, train, ["classifier"])
    assert task_config["classifier"] == str(tmp_path / "runs" / "resnet")
    with pytest.raises(ConfigError, match="classifier.*differs"):
        resumed_settings(ckpt, {"classifier": "runs/other"}, train, ["classifier"])
