"""A run folder and the rule that nothing in it is destroyed by accident.

A run writes its checkpoints, metrics, summary and plots into one folder. A new run
into a folder that already holds one is refused unless the caller says what to do
with the old run: resume it, or overwrite it (which deletes the old run's files, and
only those). Files are replaced atomically (a temporary file, then a rename), so a kill
at any moment leaves the old version or the new one; the temporary file a kill can
leave behind is removed when the next run opens the folder.
"""
from __future__ import annotations

import glob
import os

# Files a run writes (besides its checkpoint, whose name is a setting), and the patterns
# of the temporary files it writes them through.
RUN_FILES = ("best.safetensors", "metrics.csv", "metrics.jsonl", "summary.json", "loss.png")
RUN_FILE_PATTERNS = ("samples_seed*.png",)
TEMPORARY_PATTERNS = ("*.tmp", ".*.tmp")


class RunFolderError(ValueError):
    """A run folder that cannot be used as asked (it holds a run, or holds none)."""


def run_files(out_dir, checkpoint_name):
    """The paths of the files of a run in `out_dir` that exist."""
    paths = [os.path.join(out_dir, name) for name in (checkpoint_name, *RUN_FILES)]
    paths += [p for pattern in RUN_FILE_PATTERNS for p in glob.glob(os.path.join(out_dir, pattern))]
    return [p for p in paths if os.path.exists(p)]


def check_run_folder(out_dir, checkpoint_name, resume=False, overwrite=False):
    """Check, without writing anything, that a run may use `out_dir` as asked.

    A new run (neither flag) needs a folder without a run in it; `resume` needs the
    checkpoint; `overwrite` takes any folder.
    """
    if resume and overwrite:
        raise RunFolderError("--resume continues the run in the folder and --overwrite "
                             "replaces it: give one of them")
    checkpoint = os.path.join(out_dir, checkpoint_name)
    if resume and not os.path.exists(checkpoint):
        raise RunFolderError(f"nothing to resume: there is no checkpoint {checkpoint}; drop "
                             "--resume to start a new run there")
    existing = run_files(out_dir, checkpoint_name)
    if existing and not (resume or overwrite):
        raise RunFolderError(f"{out_dir} already holds a run ({os.path.basename(existing[0])}); "
                             "give --resume to continue it, --overwrite to replace it, or "
                             "another --out-dir")


def clear_run_folder(out_dir, checkpoint_name, overwrite=False):
    """Remove the temporary files a killed run left in `out_dir` and, with `overwrite`,
    the files of the run there. Called once everything else has been checked, so a run
    that fails before its first step leaves the folder as it was."""
    for pattern in TEMPORARY_PATTERNS:
        for path in glob.glob(os.path.join(out_dir, pattern)):
            os.remove(path)
    if overwrite:
        for path in run_files(out_dir, checkpoint_name):
            os.remove(path)


def write_atomically(path, text):
    """Write `text` to a temporary file beside `path`, then rename it over `path`: a
    reader (or a kill) sees the old file or the new one, never half of one."""
    temp = path + ".tmp"
    with open(temp, "w", newline="") as f:
        f.write(text)
    os.replace(temp, path)
