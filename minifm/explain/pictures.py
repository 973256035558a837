"""Pictures of explanations, drawn with matplotlib (imported only here, only when
drawing: it is optional). Every function takes NumPy arrays and a path, writes one PNG
and returns the path; every picture has a title, labelled axes and a colour scale.

Colours follow one rule: a map of amounts (attention, saliency) is sequential, light to
dark; a map of signed contributions (integrated gradients) is diverging, red for
evidence for the prediction and blue against, with white at zero.
"""
from __future__ import annotations

import numpy as np

VISIBLE = {" ": "\u2423", "\n": "\u21b5", "\t": "\u21e5", "\r": "\u240d"}


def token_labels(tokens):
    """Tokens as tick labels, whitespace made visible (a space is drawn as a small u)."""
    return ["".join(VISIBLE.get(c, c) for c in t) or "\u2205" for t in tokens]


def _figure(width, height):
    from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend
    return Figure(figsize=(width, height), dpi=110, layout="constrained")


def _save(fig, path):
    fig.savefig(path)
    return path


def _symmetric_limit(values):
    """The colour limit that puts zero at the middle of a diverging scale."""
    return float(np.abs(values).max()) or 1.0


def _side(n_tokens):
    """The side, in inches, of a (T, T) heatmap whose tick labels stay legible."""
    return max(3.6, 0.15 * n_tokens)


def _fontsize(n_tokens, length):
    """The tick label size that gives each of n_tokens labels its share of `length`
    inches (72 points to the inch), within 5 to 11 points."""
    return max(5.0, min(11.0, 0.8 * 72 * length / max(n_tokens, 1)))


def _token_axes(ax, tokens, side, xlabel, ylabel):
    labels = token_labels(tokens)
    size = _fontsize(len(labels), side)
    ax.set_xticks(range(len(labels)), labels, fontsize=size, rotation=90)
    ax.set_yticks(range(len(labels)), labels, fontsize=size)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)


def attention_heads(path, attention, tokens, title):
    """One layer's attention probabilities (H, T, T), a heatmap per head, in rows of
    four (of two for long texts, whose panels are bigger)."""
    heads, side = attention.shape[0], _side(len(tokens))
    cols = min(heads, 4 if len(tokens) <= 24 else 2)
    rows = -(-heads // cols)
    fig = _figure(side * cols + 1.2, side * rows + 0.8)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for h, ax in enumerate(axes):
        if h >= heads:
            ax.set_axis_off()
            continue
        image = ax.imshow(attention[h], cmap="viridis", vmin=0.0, vmax=1.0)
        _token_axes(ax, tokens, side, "attends to (key)", "token (query)")
        ax.set_title(f"head {h}")
    fig.colorbar(image, ax=list(axes), label="attention probability", shrink=0.6)
    fig.suptitle(title)
    return _save(fig, path)


def token_matrix(path, matrix, tokens, title, label):
    """A (T, T) map between the tokens, e.g. the attention rollout, on a square-root
    colour scale (the first tokens hold most of the mass and would wash out the rest)."""
    from matplotlib import colors
    side = _side(len(tokens))
    fig = _figure(side + 1.8, side + 0.6)
    ax = fig.subplots()
    image = ax.imshow(matrix, cmap="viridis", norm=colors.PowerNorm(0.5, vmin=0.0))
    _token_axes(ax, tokens, side, "input token", "position")
    fig.colorbar(image, ax=ax, label=label + " (square-root scale)", shrink=0.8)
    ax.set_title(title)
    return _save(fig, path)


def token_attributions(path, tokens, attributions, rollout, title, marked):
    """Per-token integrated gradients (signed bars) above the attention rollout of the
    predicting position (bars), `marked` the position being predicted from."""
    from matplotlib import cm, colors
    n = len(tokens)
    fig = _figure(max(6.0, 0.28 * n + 2.0), 5.2)
    top, bottom = fig.subplots(2, 1, sharex=True)
    limit = _symmetric_limit(attributions)
    scale = colors.Normalize(-limit, limit)
    top.bar(range(n), attributions, color=cm.RdBu_r(scale(attributions)), edgecolor="0.3",
            linewidth=0.4)
    top.axhline(0, color="0.3", linewidth=0.6)
    top.set_ylabel("integrated gradients\n(sum over embedding)")
    top.set_title(title)
    fig.colorbar(cm.ScalarMappable(scale, "RdBu_r"), ax=top, label="against  |  for")
    bottom.bar(range(n), rollout, color=cm.viridis(rollout / (rollout.max() or 1.0)),
               edgecolor="0.3", linewidth=0.4)
    bottom.set_ylabel("attention rollout\n(share of the input)")
    fig.colorbar(cm.ScalarMappable(colors.Normalize(0, rollout.max() or 1.0), "viridis"),
                 ax=bottom, label="share")
    labels = token_labels(tokens)
    bottom.set_xticks(range(n), labels, fontsize=_fontsize(n, 0.28 * n))
    bottom.get_xticklabels()[marked].set_color("crimson")
    bottom.set_xlabel("input tokens (the predicting position in red)")
    return _save(fig, path)


def image_attributions(path, images, maps, captions, title):
    """A column per image: the image, then one row per map ({name: (N, H, W)}). Saliency
    rows share one sequential scale, signed rows one diverging scale."""
    rows = 1 + len(maps)
    n = len(images)
    fig = _figure(1.5 * n + 1.6, 1.6 * rows + 0.6)
    axes = fig.subplots(rows, n, squeeze=False)
    for i in range(n):
        axes[0, i].imshow(images[i], cmap="gray", vmin=-1, vmax=1)
        axes[0, i].set_title(captions[i], fontsize=8)
    for r, (name, values) in enumerate(maps.items(), start=1):
        signed = values.min() < 0
        limit = _symmetric_limit(values)
        style = dict(cmap="RdBu_r", vmin=-limit, vmax=limit) if signed else \
            dict(cmap="magma", vmin=0, vmax=limit)
        for i in range(n):
            image = axes[r, i].imshow(values[i], **style)
        fig.colorbar(image, ax=list(axes[r]), label=name, shrink=0.9)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    for r, name in enumerate(["image"] + list(maps)):
        axes[r, 0].set_ylabel(name, fontsize=9)
    fig.suptitle(title)
    return _save(fig, path)
