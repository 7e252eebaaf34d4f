"""A mobile GPU delegate compatibility checker that reads the TFLite flatbuffer itself.

`tf.lite.experimental.Analyzer` no longer checks GPU compatibility (it passes models with ARG_MAX
or 5-D reshapes), so this module reads every operator and tensor of every subgraph and flags
what the delegate cannot run (DESIGN.md section 5): operators outside its list, tensors of rank
above 4, dynamic shapes, and the unsupported cases of TRANSPOSE, STRIDED_SLICE, GATHER, SOFTMAX
and BATCH_MATMUL.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tensorflow.lite.python import schema_py_generated as schema

from keras_gcnprune.export.flatbuffer import operator_name, read_model

GPU_OPERATORS = frozenset({
    "ABS", "ADD", "AVERAGE_POOL_2D", "BATCH_MATMUL", "CONCATENATION", "CONV_2D", "COS",
    "DEPTHWISE_CONV_2D", "DEPTH_TO_SPACE", "DEQUANTIZE", "DIV", "ELU", "EXP", "FULLY_CONNECTED",
    "GATHER", "HARD_SWISH", "LEAKY_RELU", "LOG", "LOGISTIC", "MAXIMUM", "MAX_POOL_2D", "MEAN",
    "MINIMUM", "MIRROR_PAD", "MUL", "NEG", "PAD", "PADV2", "POW", "PRELU", "QUANTIZE",
    "REDUCE_MAX", "REDUCE_MIN", "RELU", "RELU6", "RELU_N1_TO_1", "RESHAPE", "RSQRT", "SIN",
    "SLICE", "SOFTMAX", "SPACE_TO_DEPTH", "SPLIT", "SPLIT_V", "SQRT", "SQUARE",
    "SQUARED_DIFFERENCE", "STRIDED_SLICE", "SUB", "SUM", "TANH", "TRANSPOSE",
})
MAX_RANK = 4


@dataclass(frozen=True)
class Finding:
    """One thing the GPU delegate cannot run.

    Args:
        operator: Index of the operator in its subgraph (-1 for a tensor-only finding).
        name: Operator name, or the tensor's name.
        reason: What is wrong, in words.
    """

    operator: int
    name: str
    reason: str

    def __str__(self) -> str:
        where = f"op {self.operator} {self.name}" if self.operator >= 0 else self.name
        return f"{where}: {self.reason}"


def _constant(model, subgraph, tensor_index: int) -> np.ndarray | None:
    tensor = subgraph.tensors[tensor_index]
    data = model.buffers[tensor.buffer].data if tensor.buffer < len(model.buffers) else None
    if data is None or len(data) == 0:
        return None
    dtype = {schema.TensorType.INT32: np.int32, schema.TensorType.INT64: np.int64}.get(
        tensor.type, np.uint8)
    return np.frombuffer(bytes(np.asarray(data, dtype=np.uint8)), dtype=dtype)


def _shape(subgraph, tensor_index: int) -> list[int]:
    return [int(d) for d in subgraph.tensors[tensor_index].shape]


def _transpose_findings(model, subgraph, op) -> list[str]:
    permutation = _constant(model, subgraph, op.inputs[1])
    if permutation is None:
        return ["permutation is not a constant"]
    if not 2 <= permutation.size <= MAX_RANK:
        return [f"permutation of size {permutation.size} (the delegate takes 2 to 4)"]
    return []


def _strided_slice_findings(model, subgraph, op) -> list[str]:
    options = op.builtinOptions
    found = []
    rank = len(_shape(subgraph, op.inputs[0]))
    if rank not in (3, 4):
        found.append(f"input of rank {rank} (the delegate slices 3-D and 4-D tensors)")
    for mask in ("ellipsisMask", "newAxisMask", "shrinkAxisMask"):
        if options is not None and getattr(options, mask):
            found.append(f"{mask} = {getattr(options, mask)} (unsupported)")
    if any(_constant(model, subgraph, i) is None for i in op.inputs[1:4]):
        found.append("begin, end or strides is not a constant")
    return found


def _gather_findings(model, subgraph, op) -> list[str]:
    indices = subgraph.tensors[op.inputs[1]]
    found = []
    if len(indices.shape) != 1:
        found.append(f"indices of rank {len(indices.shape)} (the delegate takes 1-D indices)")
    if indices.type != schema.TensorType.INT32:
        found.append("indices are not int32")
    return found


def _softmax_findings(model, subgraph, op) -> list[str]:
    beta = op.builtinOptions.beta if op.builtinOptions is not None else 1.0
    return [] if beta == 1.0 else [f"beta = {beta} (the delegate takes beta 1)"]


def _batch_matmul_findings(model, subgraph, op) -> list[str]:
    left, right = (_shape(subgraph, i) for i in op.inputs[:2])
    if left[:-2] != right[:-2]:
        return [f"broadcasting batch dimensions {left} x {right} (unsupported case)"]
    return []


OPERATOR_CHECKS = {
    "TRANSPOSE": _transpose_findings,
    "STRIDED_SLICE": _strided_slice_findings,
    "GATHER": _gather_findings,
    "SOFTMAX": _softmax_findings,
    "BATCH_MATMUL": _batch_matmul_findings,
}


def _tensor_findings(subgraph, tensor_index: int) -> list[str]:
    tensor = subgraph.tensors[tensor_index]
    found = []
    if len(tensor.shape) > MAX_RANK:
        found.append(f"tensor {tensor.name.decode()!r} has rank {len(tensor.shape)} > {MAX_RANK}")
    signature = tensor.shapeSignature
    if signature is not None and any(int(d) < 0 for d in signature):
        found.append(f"tensor {tensor.name.decode()!r} has a dynamic shape "
                     f"{[int(d) for d in signature]}")
    return found


def check_gpu(source: str | Path | bytes) -> list[Finding]:
    """Lists every operator or tensor of a TFLite model that the mobile GPU delegate cannot run.

    Args:
        source: A `.tflite` path or its bytes.

    Returns:
        The findings, empty when the whole model can run on the GPU delegate.

    Example:
        >>> for finding in check_gpu("gesture.tflite"):  # doctest: +SKIP
        ...     print(finding)
    """
    model = read_model(source)
    findings = []
    for subgraph in model.subgraphs:
        for index, op in enumerate(subgraph.operators):
            name = operator_name(model, op.opcodeIndex)
            if name not in GPU_OPERATORS:
                findings.append(Finding(index, name, "operator not supported by the GPU delegate"))
                continue
            reasons = OPERATOR_CHECKS.get(name, lambda *a: [])(model, subgraph, op)
            for tensor_index in [*op.inputs, *op.outputs]:
                if tensor_index >= 0:
                    reasons += _tensor_findings(subgraph, tensor_index)
            findings += [Finding(index, name, reason) for reason in dict.fromkeys(reasons)]
    return findings
