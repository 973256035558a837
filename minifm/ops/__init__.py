"""The op library: one module per family of differentiable ops (see DESIGN.md section 1).

How the Function classes are named, so that a name means one thing across minifm:

- After the node PyTorch records for the op, its grad_fn name less "Backward0": Relu,
  LeakyRelu, Silu, AvgPool2D, MaxPool2DWithIndices, AdaptiveAvgPool2D, Convolution,
  NllLoss. `y.grad_fn` then prints as in PyTorch (<ReluBackward0>).
- Where that name is an nn Module's too (Sigmoid, Tanh, Softplus, Embedding), or PyTorch
  records no one node for the op (linear: Addmm, Mm or a view, by shape and bias), the
  Function is `<Name>Function`: SigmoidFunction, EmbeddingFunction, LinearFunction.
  conv_transpose2d, one Convolution node with a flag in PyTorch, is TransposedConvolution.
- So a Function and a Module never share a name, and only PyTorch's spellings above
  differ from a Module's name in case alone (tests/test_function_names.py checks both).
- An op with a kernel is two Functions, `<Op>Reference` and `<Op>Fused` (GeluReference,
  NativeLayerNormFused; see minifm.kernels).
"""
