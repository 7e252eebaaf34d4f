"""Reading TFLite flatbuffers, and the package's metadata embedded in them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from tensorflow.lite.python import schema_py_generated as schema
from tensorflow.lite.tools import flatbuffer_utils

METADATA_NAME = "keras_gcnprune"
OPERATOR_NAMES = {
    value: name for name, value in vars(schema.BuiltinOperator).items() if not name.startswith("_")
}


TFLITE_IDENTIFIER = b"TFL3"


def read_model(source: str | Path | bytes) -> schema.ModelT:
    """The mutable object form of a `.tflite` file or of its bytes.

    Raises:
        ValueError: the data are not a TFLite flatbuffer (no `TFL3` file identifier, or a
            structure that does not parse into at least one subgraph with operator codes).
    """
    name = "the model bytes" if isinstance(source, bytes | bytearray) else str(source)
    data = source if isinstance(source, bytes | bytearray) else Path(source).read_bytes()
    if len(data) < 8 or bytes(data[4:8]) != TFLITE_IDENTIFIER:
        found = bytes(data[4:8]) if len(data) >= 8 else f"{len(data)} bytes in all"
        raise ValueError(f"{name} is not a TFLite model: its file identifier is {found!r}, not "
                         f"{TFLITE_IDENTIFIER!r}. Pass a .tflite file written by a TFLite "
                         "converter (`gcnprune export --tflite`).")
    try:
        model = flatbuffer_utils.convert_bytearray_to_object(bytearray(data))
        valid = bool(model.subgraphs) and model.operatorCodes is not None and all(
            subgraph.tensors is not None for subgraph in model.subgraphs)
    except Exception as error:  # a damaged flatbuffer fails anywhere in the generated reader
        raise ValueError(f"{name} is not a readable TFLite model: its flatbuffer is damaged "
                         f"({type(error).__name__}: {error}).") from error
    if not valid:
        raise ValueError(f"{name} is not a usable TFLite model: it has no subgraph or no "
                         "operator codes.")
    problem = _index_out_of_range(model)
    if problem:
        raise ValueError(f"{name} is not a readable TFLite model: its flatbuffer is damaged "
                         f"({problem}).")
    return model


def _index_out_of_range(model: schema.ModelT) -> str | None:
    """The first operator-code, tensor or buffer index that points outside its list."""
    codes, buffers = len(model.operatorCodes), len(model.buffers or [])
    for s, subgraph in enumerate(model.subgraphs):
        tensors = len(subgraph.tensors)
        ends = [("subgraph input", list(subgraph.inputs or [])),
                ("subgraph output", list(subgraph.outputs or []))]
        for o, op in enumerate(subgraph.operators or []):
            if not 0 <= op.opcodeIndex < codes:
                return f"subgraph {s} operator {o} has operator code {op.opcodeIndex} of {codes}"
            ends += [(f"operator {o} tensor", list(op.inputs if op.inputs is not None else [])
                      + list(op.outputs if op.outputs is not None else []))]
        for what, indices in ends:
            bad = [int(i) for i in indices if not -1 <= int(i) < tensors]
            if bad:
                return f"subgraph {s} {what} index {bad[0]} of {tensors} tensors"
        for t, tensor in enumerate(subgraph.tensors):
            if not 0 <= tensor.buffer < max(buffers, 1):
                return f"subgraph {s} tensor {t} has buffer {tensor.buffer} of {buffers}"
    return None


def operator_name(model: schema.ModelT, opcode_index: int) -> str:
    code = model.operatorCodes[opcode_index]
    # Codes above 127 live in builtinCode only; older files keep small ones in the deprecated
    # field, hence the max.
    value = max(code.builtinCode, code.deprecatedBuiltinCode)
    if value == schema.BuiltinOperator.CUSTOM:
        return f"CUSTOM({code.customCode.decode() if code.customCode else '?'})"
    return OPERATOR_NAMES.get(value, f"BUILTIN_{value}")


def with_metadata_entry(data: bytes, name: str, payload: bytes) -> bytes:
    """Returns the model bytes with `payload` in a new buffer named `name` in its metadata list
    (an entry of the same name is replaced)."""
    model = read_model(data)
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(payload, dtype=np.uint8)
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = name
    entry.buffer = len(model.buffers) - 1
    model.metadata = [m for m in (model.metadata or []) if m.name != name.encode()]
    model.metadata.append(entry)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def with_metadata(data: bytes, metadata: dict) -> bytes:
    """Returns the model bytes with `metadata` (JSON) embedded under `METADATA_NAME`."""
    return with_metadata_entry(data, METADATA_NAME, json.dumps(metadata, sort_keys=True).encode())


def read_metadata(source: str | Path | bytes) -> dict:
    """The package's metadata embedded in a `.tflite` file.

    Args:
        source: Path to the file, or its bytes.

    Returns:
        The metadata dictionary (labels, layout, frames, preprocessing, pruning, ...).

    Example:
        >>> read_metadata("gesture.tflite")["labels"]  # doctest: +SKIP
    """
    model = read_model(source)
    for entry in model.metadata or []:
        if entry.name.decode() == METADATA_NAME:
            return json.loads(bytes(model.buffers[entry.buffer].data).decode())
    raise ValueError(f"{source} carries no {METADATA_NAME} metadata; export it with "
                     "keras_gcnprune.export.export_tflite or `gcnprune export --tflite`.")
