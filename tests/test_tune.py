"""`minifm tune`: the Trainer's evaluation callback, --param parsing, a tiny study that
prunes, resumes from its SQLite file and reports; and `minifm eval --data`."""
import json
import math
import os

import pytest

from minifm.cli import main
from minifm.train import TrainConfig, Trainer
from minifm.train.tasks import TASKS
from minifm.train.trainer import StopRun
from minifm.train.tune import SearchParam, field_types, parse_param

TINY = ["--corpus-bytes", "20000", "--n-embd", "16", "--n-head", "2", "--n-layer", "1",
        "--block-size", "16", "--batch-size", "4", "--eval-iters", "2", "--log-interval", "5"]


def tiny_gpt(tmp_path):
    cfg = TASKS["gpt"].config_class(corpus_bytes=20000, n_embd=16, n_head=2, n_layer=1,
                                    block_size=16, batch_size=4, eval_iters=2)
    return TASKS["gpt"](cfg, str(tmp_path))


def test_on_evaluate_sees_every_validation_and_may_stop_the_run(tmp_path):
    seen = []

    def on_evaluate(step, metrics):
        seen.append((step, round(metrics["loss"], 6)))
        if step == 10:
            raise StopRun("enough")

    trainer = Trainer(tiny_gpt(tmp_path), TrainConfig(max_steps=30, eval_interval=5,
                                                      out_dir=str(tmp_path)),
                      log=lambda *_: None, on_evaluate=on_evaluate, evaluate_test=False)
    summary = trainer.fit()
    assert [step for step, _ in seen] == [0, 5, 10]
    assert summary["outcome"] == "pruned" and summary["steps"] == 10 and "test" not in summary
    rows = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
    assert [(r["step"], round(r["loss"], 6)) for r in rows if r.get("split") == "val"] == seen


def test_parse_param():
    types = field_types("gpt")
    assert parse_param("learning_rate=loguniform:1e-4:1e-2", types) == SearchParam(
        "learning_rate", "loguniform", (1e-4, 1e-2))
    assert parse_param("n-layer=int:2:6", types) == SearchParam("n_layer", "int", (2, 6))
    assert parse_param("warmup_steps=choice:0,50", types) == SearchParam(
        "warmup_steps", "choice", (0, 50))
    assert parse_param("bias=choice:true,false", types).values == (True, False)
    for bad, match in [("nope=uniform:0:1", "not a setting"),
                       ("n_layer=uniform:1:2", "int setting"),
                       ("dropout=uniform:0.3:0.1", "LOW < HIGH"),
                       ("learning_rate=loguniform:0:1", "LOW > 0"),
                       ("n_layer=int:a:3", "invalid literal")]:
        with pytest.raises(ValueError, match=match):
            parse_param(bad, types)


def tune(tmp_path, trials, *extra):
    return main(["tune", "gpt", "--trials", str(trials), "--out-dir", str(tmp_path / "study"),
                 "--param", "learning_rate=loguniform:1e-4:3e-2", "--max-steps", "10",
                 "--eval-interval", "5", "--warmup-steps", "2", "--startup-trials", "1",
                 *TINY, *extra])


def test_a_study_runs_prunes_resumes_and_reports(tmp_path, capsys):
    pytest.importorskip("optuna")
    assert tune(tmp_path, 3) == 0
    study = tmp_path / "study"
    summary = json.load(open(study / "tune_summary.json"))
    assert summary["trials"]["COMPLETE"] + summary["trials"]["PRUNED"] == 3
    assert math.isfinite(summary["test"]["loss"]) and summary["test"]["split"] == "test"
    # trial 0 is the settings as given; every trial is a normal run folder
    lines = open(study / "tune_trials.md").read().splitlines()
    assert lines[2].startswith("| 0") and "0.001 |" in lines[2]
    for n in range(3):
        assert os.path.exists(study / f"trial_{n:03d}" / "summary.json")
    best = json.load(open(study / f"trial_{summary['best_trial']:03d}" / "summary.json"))
    assert "test" not in best  # the test split is looked at once, by the search
    assert os.path.exists(study / "tune_history.png")

    assert tune(tmp_path, 4) == 0  # resumes: one more trial
    assert os.path.exists(study / "trial_003") and not os.path.exists(study / "trial_004")
    assert tune(tmp_path, 4, "--dropout", "0.1") == 2  # other settings: refused
    assert "other settings" in capsys.readouterr().err


def test_bad_params_are_one_line_errors(tmp_path, capsys):
    assert main(["tune", "gpt", "--trials", "2", "--param", "n_layer=uniform:1:2",
                 "--out-dir", str(tmp_path)]) == 2
    assert "n_layer is a int setting" in capsys.readouterr().err


def test_eval_data_reports_loss_and_perplexity_per_corpus(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "gpt", "--max-steps", "5", "--out-dir", str(run), "--samples", "0",
                 *TINY]) == 0
    capsys.readouterr()
    texts = [tmp_path / "a.txt", tmp_path / "b.txt"]
    texts[0].write_text("def f(x):\n    return x + 1\n" * 20)
    texts[1].write_text("import os\nprint(os.getcwd())\n" * 20)
    assert main(["eval", "--checkpoint", str(run / "checkpoint.safetensors"),
                 "--data", str(texts[0]), "--data", str(texts[1])]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["step"] == 5 and list(report["corpora"]) == [str(t) for t in texts]
    for result in report["corpora"].values():
        assert math.isclose(result["perplexity"], math.exp(result["loss"]))
    (tmp_path / "short.txt").write_text("x")
    assert main(["eval", "--checkpoint", str(run / "checkpoint.safetensors"),
                 "--data", str(tmp_path / "short.txt")]) == 2
