"""Export to SavedModel and TFLite (LiteRT), verified, with metadata, a static GPU checker and
LiteRT's GPU engine. `compact` is `keras_gcnprune.pruning.compact`, named here too because
export is where most users meet it."""

from keras_gcnprune.export.convert import (
    QUANTIZATIONS,
    SIGNATURE,
    ExportError,
    ExportReport,
    export_saved_model,
    export_tflite,
    litert_latency_ms,
)
from keras_gcnprune.export.flatbuffer import read_metadata
from keras_gcnprune.export.gpu import Finding, check_gpu
from keras_gcnprune.export.gpu_engine import (
    GpuEngineCheck,
    GpuEngineUnavailable,
    check_gpu_engine,
    gpu_engine_missing,
)
from keras_gcnprune.export.metadata import export_metadata
from keras_gcnprune.export.raw_input import with_probabilities, with_raw_input
from keras_gcnprune.export.run import export_run
from keras_gcnprune.pruning.compaction import compact

__all__ = [
    "QUANTIZATIONS",
    "SIGNATURE",
    "ExportError",
    "ExportReport",
    "Finding",
    "GpuEngineCheck",
    "GpuEngineUnavailable",
    "check_gpu",
    "check_gpu_engine",
    "compact",
    "export_metadata",
    "export_run",
    "export_saved_model",
    "export_tflite",
    "gpu_engine_missing",
    "litert_latency_ms",
    "read_metadata",
    "with_probabilities",
    "with_raw_input",
]
