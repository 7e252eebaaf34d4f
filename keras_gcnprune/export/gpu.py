"""A mobile GPU compatibility checker that reads the TFLite flatbuffer itself.

`tf.lite.experimental.Analyzer` no longer checks GPU compatibility (it passes models with ARG_MAX
or 5-D reshapes), so this module reads every operator and tensor of every subgraph and flags
what LiteRT's GPU engine cannot run. It needs nothing but the file; `gpu_engine.check_gpu_engine`
runs the engine itself where it is installed.

Each finding has a kind. `"refused"` and `"wrong"` are said only of cases that were run on
LiteRT's GPU engine (ai-edge-litert 2.3, on SwiftShader) and seen refused, or seen to return
outputs that differ from the CPU runtime's; `tests/export/test_gpu.py` holds each observation
and runs it again wherever the engine is installed. `"unverified"` is an operator or case that
is outside the GPU delegate's documented operator list and was never tried on the engine: it may
run, or fall back to the CPU.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tensorflow.lite.python import schema_py_generated as schema

from keras_gcnprune.export.flatbuffer import operator_name, read_model

# The GPU delegate's documented operators, and those seen to run correctly on the engine.
GPU_OPERATORS = frozenset({
    "ABS", "ADD", "ARG_MAX", "AVERAGE_POOL_2D", "BATCH_MATMUL", "CAST", "CONCATENATION",
    "CONV_2D", "COS", "DEPTHWISE_CONV_2D", "DEPTH_TO_SPACE", "DEQUANTIZE", "DIV", "ELU", "EXP",
    "FULLY_CONNECTED", "GATHER", "GELU", "GREATER", "HARD_SWISH", "LEAKY_RELU", "LOG", "LOGISTIC",
    "MAXIMUM", "MAX_POOL_2D", "MEAN", "MINIMUM", "MIRROR_PAD", "MUL", "NEG", "PAD", "PADV2",
    "POW", "PRELU", "QUANTIZE", "REDUCE_MAX", "REDUCE_MIN", "RELU", "RELU6", "RELU_N1_TO_1",
    "RESHAPE", "RESIZE_BILINEAR", "RSQRT", "SELECT", "SELECT_V2", "SIN", "SLICE", "SOFTMAX",
    "SPACE_TO_DEPTH", "SPLIT", "SPLIT_V", "SQRT", "SQUARE", "SQUARED_DIFFERENCE", "STRIDED_SLICE",
    "SUB", "SUM", "TANH", "TILE", "TRANSPOSE",
})
# Operators seen to run with wrong outputs (or to crash the engine), and why.
WRONG_OPERATORS = {
    "CUMSUM": "its outputs differ from the CPU runtime's (1-D) or it crashes the engine (4-D)",
}
# The newest operator version the engine takes, as its refusals state ("Max version supported").
MAX_VERSIONS = {"STRIDED_SLICE": 2}
MAX_RANK = 4
KINDS = {
    "refused": "the GPU engine refuses this",
    "wrong": "runs on the GPU engine but is known to be wrong",
    "unverified": "not known to run on the GPU engine",
}


@dataclass(frozen=True)
class Finding:
    """One thing LiteRT's GPU engine refuses, gets wrong, or is not known to run.

    Args:
        operator: Index of the operator in its subgraph (-1 for a tensor-only finding).
        name: Operator name, or the tensor's name.
        reason: What is wrong, in words.
        kind: `"refused"` or `"wrong"` (both seen on the engine) or `"unverified"`.
    """

    operator: int
    name: str
    reason: str
    kind: str = "unverified"

    def __str__(self) -> str:
        where = f"op {self.operator} {self.name}" if self.operator >= 0 else self.name
        return f"{where}: {self.reason} ({KINDS[self.kind]})"


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


def _transpose_findings(model, subgraph, op) -> list[tuple[str, str]]:
    permutation = _constant(model, subgraph, op.inputs[1])
    if permutation is None:
        return [("permutation is not a constant", "unverified")]
    if not 2 <= permutation.size <= MAX_RANK:
        return [(f"permutation of size {permutation.size} (2 to 4 run)", "refused")]
    return []


def _strided_slice_findings(model, subgraph, op) -> list[tuple[str, str]]:
    options = op.builtinOptions
    found = []
    rank = len(_shape(subgraph, op.inputs[0]))
    if not 2 <= rank <= MAX_RANK:
        found.append((f"input of rank {rank} (2-D to 4-D slices run)", "unverified"))
    if options is not None and options.shrinkAxisMask:
        found.append((f"shrinkAxisMask = {options.shrinkAxisMask}", "refused"))
    for mask in ("ellipsisMask", "newAxisMask"):
        if options is not None and getattr(options, mask):
            found.append((f"{mask} = {getattr(options, mask)}", "unverified"))
    if any(_constant(model, subgraph, i) is None for i in op.inputs[1:4]):
        found.append(("begin, end or strides is not a constant", "unverified"))
    return found


def _gather_findings(model, subgraph, op) -> list[tuple[str, str]]:
    indices = subgraph.tensors[op.inputs[1]]
    found = []
    if len(indices.shape) != 1:
        found.append((f"indices of rank {len(indices.shape)} (1-D indices run)", "refused"))
    if indices.type not in (schema.TensorType.INT32, schema.TensorType.INT64):
        found.append(("indices are not int32", "unverified"))
    return found


def _softmax_findings(model, subgraph, op) -> list[tuple[str, str]]:
    beta = op.builtinOptions.beta if op.builtinOptions is not None else 1.0
    return [] if beta == 1.0 else [(f"beta = {beta} (the delegate documents beta 1)",
                                    "unverified")]


def _batch_matmul_findings(model, subgraph, op) -> list[tuple[str, str]]:
    left, right = (_shape(subgraph, i) for i in op.inputs[:2])
    if len(left) == len(right) == MAX_RANK and left[:-2] != right[:-2]:
        return [(f"4-D operands whose batch dimensions broadcast, {left} x {right}", "wrong")]
    return []


OPERATOR_CHECKS = {
    "TRANSPOSE": _transpose_findings,
    "STRIDED_SLICE": _strided_slice_findings,
    "GATHER": _gather_findings,
    "SOFTMAX": _softmax_findings,
    "BATCH_MATMUL": _batch_matmul_findings,
}


def _tensor_findings(subgraph, tensor_index: int) -> list[tuple[str, str]]:
    tensor = subgraph.tensors[tensor_index]
    found = []
    rank = 0 if tensor.shape is None else len(tensor.shape)  # None: a scalar
    if rank > MAX_RANK:
        found.append((f"tensor {tensor.name.decode()!r} has rank {rank} > {MAX_RANK}",
                      "refused"))
    if tensor.type == schema.TensorType.INT64:
        found.append((f"tensor {tensor.name.decode()!r} is int64 (int32 runs)", "refused"))
    if tensor.type == schema.TensorType.INT16:
        found.append((f"tensor {tensor.name.decode()!r} is int16 (16-bit activations; float "
                      "and int8 run)", "refused"))
    return found


def _operator_findings(model, subgraph, op) -> list[tuple[str, str]]:
    name = operator_name(model, op.opcodeIndex)
    if name in WRONG_OPERATORS:
        return [(WRONG_OPERATORS[name], "wrong")]
    if name not in GPU_OPERATORS:
        return [("operator outside the GPU delegate's list", "unverified")]
    version = model.operatorCodes[op.opcodeIndex].version
    found = []
    if version > MAX_VERSIONS.get(name, version):
        found.append((f"version {version} (the engine takes up to {MAX_VERSIONS[name]})",
                      "refused"))
    found += OPERATOR_CHECKS.get(name, lambda *a: [])(model, subgraph, op)
    for tensor_index in [*op.inputs, *op.outputs]:
        if tensor_index >= 0:
            found += _tensor_findings(subgraph, tensor_index)
    return found


def check_gpu(source: str | Path | bytes) -> list[Finding]:
    """Lists every operator or tensor of a TFLite model that LiteRT's GPU engine refuses, runs
    wrongly, or is not known to run, from the file alone.

    Args:
        source: A `.tflite` path or its bytes.

    Returns:
        The findings, empty when the whole model is known to run on the GPU.

    Example:
        >>> for finding in check_gpu("gesture.tflite"):  # doctest: +SKIP
        ...     print(finding)
    """
    model = read_model(source)
    findings = []
    for subgraph in model.subgraphs:
        for index, op in enumerate(subgraph.operators):
            name = operator_name(model, op.opcodeIndex)
            found = dict.fromkeys(_operator_findings(model, subgraph, op))
            findings += [Finding(index, name, reason, kind) for reason, kind in found]
    return findings
