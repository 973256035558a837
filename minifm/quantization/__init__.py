"""minifm.quantization: int8 dynamic quantization, PyTorch's torch.ao.quantization
quantize_dynamic, plus weight-only int8 for generation.

    qmodel = minifm.quantization.quantize_dynamic(model, {nn.Linear}, dtype=minifm.qint8)

qtypes.py holds the formulas (per-channel symmetric weights, per-tensor affine
activations), int8_matmul.py the integer product (NumPy reference and Numba kernel),
modules.py the quantized layers, convert.py the module swap.
"""
from .convert import quantize_dynamic, quantize_weight_only  # noqa: F401
from .int8_matmul import int8_matmul, int8_matmul_reference  # noqa: F401
from .modules import DynamicQuantizedLinear, WeightOnlyInt8Linear  # noqa: F401
from .qtypes import QuantizedDtype, qint8, quint8, quantize_activation, quantize_weight  # noqa: F401
