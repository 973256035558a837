"""The op library: one module per family of differentiable ops (see DESIGN.md section 1)."""
