"""Pictures of the autograd graph (torchviz's make_dot).

    dot = make_dot(loss, params=dict(model.named_parameters()))
    dot.render("mlp", format="svg")          # or dot.save("mlp.dot"), or dot.source

Walking back from the output's grad_fn, each recorded Node becomes a grey box named as
PyTorch names it (grad_fn.name(): "MulBackward0"), each leaf tensor that receives a
gradient a blue box with its parameter name and shape, the output a green box, and with
show_saved=True the arrays each node saved for backward orange boxes with their shapes.
Edges point the way the forward ran. Unlike PyTorch, minifm has no AccumulateGrad node: a
leaf is drawn feeding the op that used it.

The DOT text needs nothing; turning it into an image needs the optional `graphviz` Python
package and its `dot` program. Without them `render` writes the .dot file and says so.
"""
from __future__ import annotations

import warnings

from .autograd import Node
from .tensor import Tensor

_STYLE = ('node [align=left fontname=monospace fontsize=10 height=0.2 ranksep=0.1 '
          'shape=box style=filled]')


class Dot:
    """DOT source of a graph, with torchviz's ways out: `.source`, `.save`, `.render`."""

    def __init__(self, source: str):
        self.source = source

    def __str__(self):
        return self.source

    def save(self, path) -> str:
        with open(path, "w") as f:
            f.write(self.source)
        return str(path)

    def render(self, path, format="svg") -> str:
        """Write `path`.`format` with Graphviz and return its name; without Graphviz, write
        `path`.dot, warn, and return that name instead."""
        try:
            import graphviz  # optional: `pip install graphviz` and a `dot` program
            return graphviz.Source(self.source).render(outfile=f"{path}.{format}",
                                                       cleanup=True)
        except (ImportError, OSError, RuntimeError) as err:  # no package, or no `dot`
            written = self.save(f"{path}.dot")
            warnings.warn(f"make_dot: could not render with Graphviz ({err}); wrote {written} "
                          f"instead (render it with `dot -T{format} {written}`)", stacklevel=2)
            return written


def make_dot(output: Tensor, params=None, show_saved=False) -> Dot:
    """The autograd graph that produced `output` (a Tensor with a grad_fn). `params` maps
    names to tensors (e.g. dict(model.named_parameters())) to label the leaves."""
    names = {id(t): name for name, t in (params or {}).items()}
    lines = ["digraph {", '\tgraph [size="12,12"]', "\t" + _STYLE]

    def box(key, label, color=None):
        fill = f" fillcolor={color}" if color else ""
        lines.append(f'\t{key} [label="{label}"{fill}]')

    def edge(src, dst):
        lines.append(f"\t{src} -> {dst}")

    box(id(output), _shape(output.shape), "darkolivegreen1")
    if output.grad_fn is not None:
        edge(id(output.grad_fn), id(output))
    seen, stack = set(), [output.grad_fn] if output.grad_fn is not None else []
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        box(id(node), node.name())
        if show_saved:
            for i, array in enumerate(node.saved or ()):
                key = f"{id(node)}{i}saved"
                box(key, f"saved[{i}]\\n{_shape(array.shape)}", "orange")
                lines.append(f"\t{key} -> {id(node)} [dir=none]")
        for parent in node.parents:
            if parent is None:
                continue
            if parent.__class__ is not Node and id(parent) not in seen:
                seen.add(id(parent))
                name, shape = names.get(id(parent)), _shape(parent.shape)
                box(id(parent), f"{name}\\n{shape}" if name else shape, "lightblue")
            edge(id(parent), id(node))
            if parent.__class__ is Node:
                stack.append(parent)
    lines.append("}")
    return Dot("\n".join(lines) + "\n")


def _shape(shape):
    """torchviz's size_to_str: (3, 4)."""
    return "(" + ", ".join(str(n) for n in shape) + ")"
