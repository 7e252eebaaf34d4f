"""The standard TFLite model metadata (`TFLITE_METADATA`) and its packed labels file.

Android Studio's model binding, tflite-support's `MetadataDisplayer` and MediaPipe's readers
find a model's description and labels in a `ModelMetadata` flatbuffer (file identifier `M001`,
`tensorflow_lite_support/metadata/metadata_schema.fbs` in the tensorflow/tflite-support
repository) stored under the model's metadata name `TFLITE_METADATA`, and the files it names in
a zip archive appended to the `.tflite` file. tflite-support itself cannot share an environment
with TensorFlow 2.21 (it needs protobuf < 4, TensorFlow >= 6.31), so this module writes and
reads the tables with the `flatbuffers` runtime, slot by slot in the schema's field order.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import flatbuffers
from flatbuffers import table as fb_table
from flatbuffers.number_types import UOffsetTFlags

from keras_gcnprune.export.flatbuffer import read_model, with_metadata_entry

STANDARD_METADATA_NAME = "TFLITE_METADATA"
FILE_IDENTIFIER = b"M001"
LABELS_FILE = "labels.txt"
MIN_PARSER_VERSION = "1.0.0"  # the oldest schema with every field written here
TENSOR_AXIS_LABELS = 2  # AssociatedFileType
FEATURE_PROPERTIES = 1  # ContentProperties union member

REQUIRED_KEYS = ("model", "package_version", "signature", "input", "output", "labels", "frames",
                 "joints", "channels", "quantization")
NUMBER_FORMATS = {"none": "float32", "fp16": "float16 weights",
                  "dynamic": "int8 weights, float activations", "int8": "int8 weights and "
                  "activations, float input and output",
                  "int16x8": "int8 weights, int16 activations, float input and output"}
# Slots (field order) of the schema's tables.
MODEL = {"name": 0, "description": 1, "version": 2, "subgraph_metadata": 3, "author": 4,
         "license": 5, "associated_files": 6, "min_parser_version": 7}
SUBGRAPH = {"name": 0, "description": 1, "input_tensor_metadata": 2,
            "output_tensor_metadata": 3}
TENSOR = {"name": 0, "description": 1, "content": 3, "associated_files": 6}
CONTENT = {"content_properties_type": 0, "content_properties": 1}
ASSOCIATED_FILE = {"name": 0, "description": 1, "type": 2}


def _strings(builder: flatbuffers.Builder, values: dict[str, str | None]) -> dict[str, int]:
    return {key: builder.CreateString(value) for key, value in values.items() if value}


def _table(builder: flatbuffers.Builder, slots: dict[str, int], offsets: dict[str, int],
           bytes_: dict[str, int] | None = None) -> int:
    builder.StartObject(max(slots.values()) + 1)
    for key, offset in offsets.items():
        builder.PrependUOffsetTRelativeSlot(slots[key], offset, 0)
    for key, value in (bytes_ or {}).items():
        builder.PrependUint8Slot(slots[key], value, 0)
    return builder.EndObject()


def _vector(builder: flatbuffers.Builder, offsets: list[int]) -> int:
    builder.StartVector(4, len(offsets), 4)
    for offset in reversed(offsets):
        builder.PrependUOffsetTRelative(offset)
    return builder.EndVector()


def _labels_file(builder: flatbuffers.Builder) -> int:
    strings = _strings(builder, {"name": LABELS_FILE,
                                 "description": "Class labels, one per line, in output order."})
    return _table(builder, ASSOCIATED_FILE, strings, {"type": TENSOR_AXIS_LABELS})


def _tensor(builder: flatbuffers.Builder, name: str, description: str,
            files: list[int] | None = None) -> int:
    builder.StartObject(0)
    features = builder.EndObject()
    content = _table(builder, CONTENT, {"content_properties": features},
                     {"content_properties_type": FEATURE_PROPERTIES})
    offsets = {**_strings(builder, {"name": name, "description": description}),
               "content": content}
    if files:
        offsets["associated_files"] = _vector(builder, files)
    return _table(builder, TENSOR, offsets)


def _input_description(metadata: dict) -> str:
    frames, joints, channels = metadata["frames"], metadata["joints"], metadata["channels"]
    layout = (metadata.get("layout") or {}).get("name", "the training layout")
    window = (f"A window of {frames} frames of {joints} joints ({layout}) with {channels} "
              f"channels each, float32 {metadata['input']['shape']} (batch, frames, joints, "
              "channels)")
    raw = metadata.get("raw_input")
    if raw:
        return (f"{window}: raw coordinates as the sensor gives them, read as axes "
                f"{raw['axes']}; a missing joint has all-zero coordinates. Centring, scaling "
                "and streams run in the model.")
    return (f"{window}, preprocessed as the keras_gcnprune metadata entry's `preprocessing` "
            "says.")


def _output_description(metadata: dict) -> str:
    scores = "probabilities" if metadata["output"]["name"] == "probabilities" else \
        "class scores (logits; a softmax turns them into probabilities)"
    return f"{len(metadata['labels'])} {scores}, in the order of {LABELS_FILE}."


def standard_metadata(metadata: dict) -> bytes:
    """The `ModelMetadata` flatbuffer of an export, from the package's metadata dict.

    Args:
        metadata: What `export_metadata` returns.

    Returns:
        The flatbuffer bytes (file identifier `M001`): model name, description, version,
        author, the input's and output's descriptions, and the labels file on the output.
    """
    missing = [key for key in REQUIRED_KEYS if key not in metadata]
    if missing:
        raise ValueError(f"The export metadata lacks {missing}: pass what "
                         "keras_gcnprune.export.export_metadata(model, ...) returns.")
    builder = flatbuffers.Builder(1024)
    inputs = _tensor(builder, metadata["input"]["name"], _input_description(metadata))
    outputs = _tensor(builder, metadata["output"]["name"], _output_description(metadata),
                      [_labels_file(builder)])
    pruning = metadata.get("pruning") or {}
    summary = (f"Skeleton-based classifier ({metadata['model']}) of {len(metadata['labels'])} "
               f"classes, exported by keras-gcnprune "
               f"({NUMBER_FORMATS.get(metadata['quantization'], metadata['quantization'])})"
               + (f", {pruning['method']}-pruned" if pruning.get("method") else "") + ".")
    subgraph = _table(builder, SUBGRAPH, {
        **_strings(builder, {"name": metadata["signature"]}),
        "input_tensor_metadata": _vector(builder, [inputs]),
        "output_tensor_metadata": _vector(builder, [outputs])})
    model = _table(builder, MODEL, {
        **_strings(builder, {"name": metadata["model"], "description": summary,
                             "version": metadata["package_version"],
                             "author": "keras-gcnprune",
                             "min_parser_version": MIN_PARSER_VERSION}),
        "subgraph_metadata": _vector(builder, [subgraph])})
    builder.Finish(model, file_identifier=FILE_IDENTIFIER)
    return bytes(builder.Output())


def with_standard_metadata(data: bytes, metadata: dict) -> bytes:
    """The model bytes with `TFLITE_METADATA` embedded and the labels file packed after them.

    Must be the last change to the bytes: rewriting the flatbuffer drops the appended files.
    """
    model = with_metadata_entry(data, STANDARD_METADATA_NAME, standard_metadata(metadata))
    archive = io.BytesIO(model)
    archive.seek(0, io.SEEK_END)
    # "a" on bytes that are not a zip appends an archive after them, as tflite-support's
    # MetadataPopulator does.
    with zipfile.ZipFile(archive, "a") as packed:
        packed.writestr(LABELS_FILE, "\n".join(metadata["labels"]) + "\n")
    return archive.getvalue()


def packed_files(source: str | Path | bytes) -> dict[str, bytes]:
    """The files packed after a `.tflite` model (labels and the like), by name."""
    data = source if isinstance(source, bytes | bytearray) else Path(source).read_bytes()
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as packed:
            return {name: packed.read(name) for name in packed.namelist()}
    except zipfile.BadZipFile:
        return {}


class _Reader:
    """Reads the fields of one flatbuffer table by slot."""

    def __init__(self, buffer: bytes, position: int):
        self.table = fb_table.Table(buffer, position)

    def _offset(self, slot: int) -> int:
        return self.table.Offset(4 + 2 * slot)

    def string(self, slot: int) -> str | None:
        offset = self._offset(slot)
        return self.table.String(offset + self.table.Pos).decode() if offset else None

    def byte(self, slot: int) -> int:
        offset = self._offset(slot)
        return self.table.Get(flatbuffers.number_types.Uint8Flags,
                              offset + self.table.Pos) if offset else 0

    def table_at(self, slot: int) -> _Reader | None:
        offset = self._offset(slot)
        return _Reader(self.table.Bytes, self.table.Indirect(offset + self.table.Pos)) \
            if offset else None

    def tables(self, slot: int) -> list[_Reader]:
        offset = self._offset(slot)
        if not offset:
            return []
        start = self.table.Vector(offset)
        return [_Reader(self.table.Bytes, self.table.Indirect(start + 4 * i))
                for i in range(self.table.VectorLen(offset))]


def _read_tensor(reader: _Reader) -> dict:
    content = reader.table_at(TENSOR["content"])
    return {"name": reader.string(TENSOR["name"]),
            "description": reader.string(TENSOR["description"]),
            "content_properties": content.byte(CONTENT["content_properties_type"])
            if content else 0,
            "associated_files": [
                {"name": f.string(ASSOCIATED_FILE["name"]),
                 "description": f.string(ASSOCIATED_FILE["description"]),
                 "type": f.byte(ASSOCIATED_FILE["type"])}
                for f in reader.tables(TENSOR["associated_files"])]}


def read_standard_metadata(source: str | Path | bytes) -> dict:
    """The `TFLITE_METADATA` of a `.tflite` file, as a dict (the fields this package writes).

    Raises:
        ValueError: the file has no `TFLITE_METADATA`, or it is not a `ModelMetadata`
            flatbuffer.

    Example:
        >>> read_standard_metadata("gesture.tflite")["name"]  # doctest: +SKIP
        'attention_gcn'
    """
    model = read_model(source)
    entries = {entry.name.decode(): entry.buffer for entry in model.metadata or []}
    if STANDARD_METADATA_NAME not in entries:
        raise ValueError(f"{source if not isinstance(source, bytes | bytearray) else 'The model'}"
                         f" carries no {STANDARD_METADATA_NAME}; export it with "
                         "keras_gcnprune.export.export_tflite(..., metadata=...).")
    buffer = bytes(model.buffers[entries[STANDARD_METADATA_NAME]].data)
    if buffer[4:8] != FILE_IDENTIFIER:
        raise ValueError(f"{STANDARD_METADATA_NAME} is not a ModelMetadata flatbuffer (file "
                         f"identifier {buffer[4:8]!r}, not {FILE_IDENTIFIER!r}).")
    root = _Reader(buffer, UOffsetTFlags.py_type(
        flatbuffers.encode.Get(flatbuffers.packer.uoffset, buffer, 0)))
    subgraphs = root.tables(MODEL["subgraph_metadata"])
    return {
        **{key: root.string(MODEL[key]) for key in
           ("name", "description", "version", "author", "min_parser_version")},
        "inputs": [_read_tensor(t) for t in subgraphs[0].tables(
            SUBGRAPH["input_tensor_metadata"])] if subgraphs else [],
        "outputs": [_read_tensor(t) for t in subgraphs[0].tables(
            SUBGRAPH["output_tensor_metadata"])] if subgraphs else [],
    }
