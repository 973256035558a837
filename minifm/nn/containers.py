"""Containers: Sequential (a pipeline), ModuleList and ModuleDict (registered collections),
ParameterList and ParameterDict (registered parameters).

A plain Python list of layers would hide them from `parameters()` and `state_dict()`; these
containers register each element as a child named by its position ("0", "1", ...) or key,
which is where state_dict keys such as "layers.3.weight" come from.
"""
from __future__ import annotations

import operator
from collections import OrderedDict

from .. import backend
from ..tensor import Tensor
from .module import Module, _addindent
from .parameter import Parameter


class _IndexedModules(Module):
    """Children kept in order: indexing, slicing, len, iteration, append, insert, pop.
    Deleting or inserting renumbers the children "0", "1", ... as PyTorch does."""

    def __init__(self, modules=()):
        super().__init__()
        for module in modules:
            self.append(module)

    def _name(self, idx):
        """The registry name of the child at (possibly negative) position idx."""
        size = len(self._modules)
        idx = operator.index(idx)
        if not -size <= idx < size:
            raise IndexError(f"index {idx} is out of range for {self._get_name()} of length {size}")
        return list(self._modules)[idx]

    def _renumber(self, modules):
        self._modules.clear()
        for i, module in enumerate(modules):
            self.add_module(str(i), module)

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return type(self)(list(self._modules.values())[idx])
        return self._modules[self._name(idx)]

    def __setitem__(self, idx, module):
        setattr(self, self._name(idx), module)

    def __delitem__(self, idx):
        names = list(self._modules)[idx] if isinstance(idx, slice) else [self._name(idx)]
        for name in names:
            del self._modules[name]
        self._renumber(list(self._modules.values()))

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module):
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules):
        for module in modules:
            self.append(module)
        return self

    def insert(self, index, module):
        size = len(self)
        if not -size <= index <= size:
            raise IndexError(f"insert: index {index} is out of range for length {size}")
        modules = list(self._modules.values())
        modules.insert(index, module)
        self._renumber(modules)
        return self

    def pop(self, idx=-1):
        module = self[idx]
        del self[idx]
        return module


class Sequential(_IndexedModules):
    """Sequential(*modules) or Sequential(OrderedDict(name=module)): forward feeds the input
    through each child in order."""

    def __init__(self, *args):
        if len(args) == 1 and isinstance(args[0], OrderedDict):
            super().__init__()
            for name, module in args[0].items():
                self.add_module(name, module)
        else:
            super().__init__(args)

    def __getitem__(self, idx):
        if isinstance(idx, slice):  # a slice keeps the children's names
            return Sequential(OrderedDict(list(self._modules.items())[idx]))
        return super().__getitem__(idx)

    def forward(self, input):
        for module in self._modules.values():
            input = module(input)
        return input


class ModuleList(_IndexedModules):
    """A list of modules that registers them (no forward: the owner decides the order)."""

    def __init__(self, modules=None):
        super().__init__(modules or ())

    def __iadd__(self, modules):
        return self.extend(modules)

    def __repr__(self):
        # PyTorch's compact form: a run of identical children prints once, "(0-5): 6 x ...".
        reprs = [repr(m) for m in self]
        if not reprs:
            return self._get_name() + "()"
        lines, start = [], 0
        for end in range(len(reprs)):
            if end + 1 < len(reprs) and reprs[end + 1] == reprs[start]:
                continue
            label = f"({start})" if end == start else f"({start}-{end}): {end - start + 1} x"
            lines.append(_addindent(f"{label}: {reprs[start]}" if end == start
                                    else f"{label} {reprs[start]}", 2))
            start = end + 1
        return self._get_name() + "(\n  " + "\n  ".join(lines) + "\n)"


class ModuleDict(Module):
    """A dict of modules that registers them under their keys (insertion order kept)."""

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key):
        return self._modules[key]

    def __setitem__(self, key, module):
        self.add_module(key, module)

    def __delitem__(self, key):
        del self._modules[key]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def __contains__(self, key):
        return key in self._modules

    def keys(self):
        return self._modules.keys()

    def values(self):
        return self._modules.values()

    def items(self):
        return self._modules.items()

    def pop(self, key):
        module = self._modules[key]
        del self._modules[key]
        return module

    def clear(self):
        self._modules.clear()

    def update(self, modules):
        items = modules.items() if hasattr(modules, "items") else modules
        for key, module in items:
            self[key] = module


def _as_parameter(value):
    """A Tensor becomes a Parameter (sharing its array), as PyTorch's containers do."""
    if isinstance(value, Parameter):
        return value
    if isinstance(value, Tensor):
        return Parameter(value)
    raise TypeError(f"cannot store a '{type(value).__name__}' in a parameter container "
                    "(minifm.nn.Parameter or Tensor required)")


def _parameter_line(key, param):
    size = "x".join(map(str, param.shape))
    return (f"    ({key}): Parameter containing: [{backend.dtype_name(param.dtype)} "
            f"of size {size}]")


class ParameterList(Module):
    """A list of parameters registered under "0", "1", ...: they are in `parameters()`
    and `state_dict()` (keys "name.0", ...) in list order."""

    def __init__(self, values=None):
        super().__init__()
        for value in values or ():
            self.append(value)

    def _name(self, idx):
        size = len(self)
        idx = operator.index(idx)
        if not -size <= idx < size:
            raise IndexError(f"index {idx} is out of range for ParameterList of length {size}")
        return str(idx % size)

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return ParameterList(list(self)[idx])
        return self._parameters[self._name(idx)]

    def __setitem__(self, idx, value):
        self.register_parameter(self._name(idx), _as_parameter(value))

    def __len__(self):
        return len(self._parameters)

    def __iter__(self):
        return iter(self._parameters[str(i)] for i in range(len(self)))

    def __iadd__(self, values):
        return self.extend(values)

    def append(self, value):
        self.register_parameter(str(len(self)), _as_parameter(value))
        return self

    def extend(self, values):
        for value in values:
            self.append(value)
        return self

    def extra_repr(self):
        return "\n".join(_parameter_line(i, p) for i, p in enumerate(self))

    def __repr__(self):
        body = self.extra_repr()
        return "ParameterList(\n" + body + "\n)" if body else "ParameterList()"


class ParameterDict(Module):
    """A dict of parameters registered under their keys. As in PyTorch, a plain dict given
    to the constructor or to update() is added in sorted key order; an OrderedDict, a
    ParameterDict or a sequence of pairs in its own order."""

    def __init__(self, parameters=None):
        super().__init__()
        if parameters is not None:
            self.update(parameters)

    def __getitem__(self, key):
        return self._parameters[key]

    def __setitem__(self, key, value):
        self.register_parameter(key, _as_parameter(value))

    def __delitem__(self, key):
        del self._parameters[key]

    def __len__(self):
        return len(self._parameters)

    def __iter__(self):
        return iter(self._parameters)

    def __contains__(self, key):
        return key in self._parameters

    def keys(self):
        return self._parameters.keys()

    def values(self):
        return self._parameters.values()

    def items(self):
        return self._parameters.items()

    def get(self, key, default=None):
        return self._parameters.get(key, default)

    def setdefault(self, key, default=None):
        if key not in self:
            self[key] = default
        return self[key]

    def pop(self, key):
        value = self._parameters[key]
        del self._parameters[key]
        return value

    def clear(self):
        self._parameters.clear()

    def update(self, parameters):
        if isinstance(parameters, (OrderedDict, ParameterDict)):
            items = list(parameters.items())
        elif hasattr(parameters, "items"):
            items = sorted(parameters.items())
        else:
            items = list(parameters)
        for key, value in items:
            self[key] = value

    def extra_repr(self):
        return "\n".join(_parameter_line(k, p) for k, p in self.items())

    def __repr__(self):
        body = self.extra_repr()
        return "ParameterDict(\n" + body + "\n)" if body else "ParameterDict()"
