"""The report of a hyperparameter search: a table of its trials (CSV and Markdown) and two
pictures drawn by Optuna's matplotlib visualizations, written to the study folder.

    tune_trials.csv / .md   one row per trial: its state, settings, best validation loss
                            (a pruned trial's last), steps trained and seconds
    tune_history.png        each trial's loss and the best so far (optimization history)
    tune_importances.png    how much of the loss's variation each setting explains (fANOVA)
"""
from __future__ import annotations

import csv
import os
import warnings


def trial_rows(study):
    """The table as a header and rows of strings, best trial marked."""
    names = sorted({name for t in study.trials for name in t.params})
    best = study.best_trial.number
    header = ["trial", "state", *names, "best val", "steps", "seconds"]
    rows = []
    for t in study.trials:
        reported = t.intermediate_values  # a pruned trial: its last validation
        value = reported[max(reported)] if t.state.name == "PRUNED" and reported else t.value
        value = "" if value is None else f"{value:.4f}"
        rows.append([f"{t.number}{' (best)' if t.number == best else ''}", t.state.name.lower(),
                     *(_format(t.params.get(name, "")) for name in names), value,
                     str(t.user_attrs.get("steps", "")), str(t.user_attrs.get("wall_seconds", ""))])
    return header, rows


def _format(value):
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def write_table(study, out_dir):
    """tune_trials.csv and tune_trials.md; returns their paths."""
    header, rows = trial_rows(study)
    csv_path, md_path = (os.path.join(out_dir, f"tune_trials.{ext}") for ext in ("csv", "md"))
    with open(csv_path, "w", newline="") as f:
        csv.writer(f).writerows([header, *rows])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    with open(md_path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return csv_path, md_path


def write_plots(study, out_dir):
    """tune_history.png and (with two finished trials or more) tune_importances.png;
    returns their paths, or [] without matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from optuna.visualization import matplotlib as optuna_plots
    except ImportError:
        return []
    plots = [("tune_history.png", optuna_plots.plot_optimization_history)]
    if sum(t.state.name == "COMPLETE" for t in study.trials) >= 2:
        plots.append(("tune_importances.png", optuna_plots.plot_param_importances))
    paths = []
    for name, plot in plots:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Optuna marks its matplotlib plots experimental
            axes = plot(study)
        axes.figure.set_size_inches(7, 4.5)
        axes.figure.tight_layout()
        paths.append(os.path.join(out_dir, name))
        axes.figure.savefig(paths[-1], dpi=110)
        plt.close(axes.figure)
    return paths


def write_report(study, out_dir):
    """The table and the plots; {"table": [csv, md], "plots": [png, ...]}."""
    return {"table": list(write_table(study, out_dir)), "plots": write_plots(study, out_dir)}
