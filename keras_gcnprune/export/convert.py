"""SavedModel and TFLite export of Keras models, each verified before it is reported done.

Both formats get one signature, `classify`, with input `skeleton` of a static shape
`(batch_size, T, V, C)` and output `logits`: a static batch keeps SHAPE/GATHER/PACK ops and
unallocatable tensors out of the TFLite graph (docs/design.md, Export facts). TFLite files are
converted from a SavedModel with builtin ops only (variables frozen into constants, so no
READ_VARIABLE), then loaded in LiteRT and compared with the Keras model. A file is staged in its
output folder (`keras_gcnprune.outputs`) and renamed into place only once its check passed, so a
failed export leaves nothing behind; an existing file is replaced only if the package wrote it
there, and never one the export reads.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from keras_gcnprune.export.flatbuffer import with_metadata
from keras_gcnprune.export.gpu import check_gpu
from keras_gcnprune.export.gpu_engine import (
    GpuEngineCheck,
    GpuEngineUnavailable,
    check_gpu_engine,
    gpu_engine_missing,
)
from keras_gcnprune.export.standard_metadata import REQUIRED_KEYS as STANDARD_KEYS
from keras_gcnprune.export.standard_metadata import with_standard_metadata
from keras_gcnprune.outputs import OutputFolder, file_output

SIGNATURE = "classify"
INPUT_NAME = "skeleton"
OUTPUT_NAME = "logits"
PROBABILITIES_NAME = "probabilities"
QUANTIZATIONS = ("none", "fp16", "dynamic", "int8", "int16x8")
# Quantizations whose activation ranges are calibrated on representative samples.
CALIBRATED = ("int8", "int16x8")
# Max abs difference from the Keras logits, as a fraction of their largest magnitude (at least
# 1), and the least top-1 agreement on a labelled dataset.
TOLERANCES = {"none": 1e-4, "fp16": 2e-2, "dynamic": 1e-1, "int8": 2e-1, "int16x8": 5e-2}
MIN_AGREEMENT = {"none": 0.99, "fp16": 0.99, "dynamic": 0.98, "int8": 0.98, "int16x8": 0.98}
# The converter's operator set of each calibrated quantization.
INTEGER_OPS = {
    "int8": tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
    "int16x8": tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8,
}
GPU_ENGINE_MODES = ("auto", "require", "off")


class ExportError(RuntimeError):
    """An exported model failed its check; the message has the numbers."""


@dataclass
class ExportReport:
    """What an export wrote and how it was checked.

    Args:
        path: The file or folder written.
        format: `"tflite"` or `"saved_model"`.
        quantization: One of `QUANTIZATIONS`.
        size_bytes: File size (folder size for a SavedModel).
        max_abs_diff: Largest difference from the Keras model's logits on the check inputs.
        tolerance: The bound it had to meet.
        checked_samples: Number of check inputs.
        top1_agreement: Fraction of samples of the labelled check set on which the exported
            model's top-1 class is the Keras model's (None without one).
        gpu_findings: What the static GPU checker flags (TFLite only; empty is good).
        gpu_engine: What LiteRT's GPU engine did with the file, GPU only, against the CPU
            runtime (TFLite only; None when it was not run).
        gpu_engine_skipped: Why the GPU engine was not run, when it was not.
        costs: With compaction, parameters and MACs of the pruned and the compacted model and
            the largest difference between their logits.
        top1_accuracy: The exported model's top-1 accuracy on the labelled check set's
            targets (None without them).
        keras_top1_accuracy: The Keras model's on the same samples.
        problems: What the check found wrong in a file written with `write_anyway` (empty
            when it passed).
    """

    path: str
    format: str
    quantization: str
    size_bytes: int
    max_abs_diff: float
    tolerance: float
    checked_samples: int
    top1_agreement: float | None = None
    gpu_findings: list[str] = field(default_factory=list)
    gpu_engine: GpuEngineCheck | None = None
    gpu_engine_skipped: str | None = None
    costs: dict | None = None
    top1_accuracy: float | None = None
    keras_top1_accuracy: float | None = None
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def check_static_input(model: keras.Model) -> None:
    """Refuses a model whose input has a dynamic dimension besides the batch."""
    shape = model.input_shape
    if not isinstance(shape, tuple) or any(d is None for d in shape[1:]):
        raise ValueError(
            f"Model {model.name!r} has input shape {shape}; export needs every dimension but "
            "the batch fixed (frames, joints, channels): mobile GPU delegates run static shapes "
            "only, and an app classifies a fixed window of frames. Build the model with a "
            "number of frames (models.build(..., frames=T)).")


def output_name(model: keras.Model) -> str:
    """The signature's output: `probabilities` after a softmax layer of that name (see
    `with_raw_input`), else `logits`."""
    return PROBABILITIES_NAME if model.layers[-1].name == PROBABILITIES_NAME else OUTPUT_NAME


def _input_spec(model: keras.Model, batch_size: int) -> tf.TensorSpec:
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
    check_static_input(model)
    return tf.TensorSpec((batch_size, *model.input_shape[1:]), tf.float32, name=INPUT_NAME)


def _write_archive(model: keras.Model, directory: Path, batch_size: int) -> None:
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        SIGNATURE, lambda x: {output_name(model): model(x, training=False)},
        input_signature=[_input_spec(model, batch_size)],
    )
    archive.write_out(str(directory), verbose=False)


def _batches(x: np.ndarray, batch_size: int):
    """Yields (batch padded to batch_size, number of real rows)."""
    for start in range(0, len(x), batch_size):
        batch = x[start:start + batch_size]
        real = len(batch)
        if real < batch_size:
            batch = np.concatenate([batch, np.repeat(batch[-1:], batch_size - real, axis=0)])
        yield batch.astype(np.float32), real


def _predict(run: Callable, x: np.ndarray, batch_size: int) -> np.ndarray:
    return np.concatenate([np.asarray(run(b))[:real] for b, real in _batches(x, batch_size)])


def _keras_logits(model: keras.Model, x: np.ndarray) -> np.ndarray:
    # Direct calls: `predict` on arrays of changing sizes retraces and warns about it.
    return np.concatenate([keras.ops.convert_to_numpy(model(x[i:i + 64], training=False))
                           for i in range(0, len(x), 64)])


def default_check_inputs(model: keras.Model, samples: int = 16, seed: int = 0) -> np.ndarray:
    """Seeded standard-normal inputs of the model's shape, for parity checks without data."""
    check_static_input(model)
    rng = np.random.default_rng(seed)
    return rng.standard_normal((samples, *model.input_shape[1:])).astype(np.float32)


@dataclass(frozen=True)
class Parity:
    """How an exported model's outputs compare with the Keras model's.

    Args:
        max_abs_diff: Largest difference between the logits on the check inputs.
        tolerance: The bound it had to meet.
        samples: Number of check inputs.
        top1_agreement: Fraction of the labelled inputs on which the top-1 classes agree.
        labelled: Number of labelled inputs.
        top1_accuracy: The exported model's accuracy on the labelled inputs' targets.
        keras_top1_accuracy: The Keras model's accuracy on the same.
    """

    max_abs_diff: float
    tolerance: float
    samples: int
    top1_agreement: float | None = None
    labelled: int = 0
    top1_accuracy: float | None = None
    keras_top1_accuracy: float | None = None

    def problems(self, quantization: str) -> list[str]:
        found = []
        if not math.isfinite(self.max_abs_diff):
            found.append(f"outputs that are not finite (max abs difference from the Keras "
                         f"logits {self.max_abs_diff}) on {self.samples} inputs")
        elif self.max_abs_diff > self.tolerance:
            found.append(f"max abs difference from the Keras logits {self.max_abs_diff:.3g} > "
                         f"{self.tolerance:.3g} on {self.samples} inputs")
        if self.top1_agreement is not None and \
                self.top1_agreement < MIN_AGREEMENT[quantization]:
            found.append(f"top-1 agreement with Keras {self.top1_agreement:.2%} < "
                         f"{MIN_AGREEMENT[quantization]:.0%} on {self.labelled} samples")
            if self.top1_accuracy is not None:
                found.append(f"its own top-1 accuracy {self.top1_accuracy:.2%} against "
                             f"{self.keras_top1_accuracy:.2%} for the Keras model")
        return found


def _compare(model, run, batch_size, quantization, check_inputs, labelled=None,
             targets=None) -> Parity:
    """`run`'s logits against the Keras model's, the tolerance scaled to the Keras logits."""
    reference = _keras_logits(model, check_inputs)
    exported = _predict(run, check_inputs, batch_size)
    tolerance = TOLERANCES[quantization] * max(1.0, float(np.max(np.abs(reference))))
    labelled_scores = {}
    if labelled is not None:
        ours = _predict(run, labelled, batch_size).argmax(-1)
        theirs = _keras_logits(model, labelled).argmax(-1)
        labelled_scores = {"top1_agreement": float(np.mean(ours == theirs)),
                           "labelled": len(labelled)}
        if targets is not None:
            labelled_scores |= {"top1_accuracy": float(np.mean(ours == targets)),
                                "keras_top1_accuracy": float(np.mean(theirs == targets))}
    return Parity(float(np.max(np.abs(exported - reference))), tolerance, len(check_inputs),
                  **labelled_scores)


def _refusal(kind: str, quantization: str, problems: list[str]) -> ExportError:
    hint = (" int16x8 (quantization='int16x8', --int16x8) keeps int8 weights with 16-bit "
            "activations, which agree far more often, for NPUs and DSPs that run them."
            if quantization == "int8" else "")
    return ExportError(f"The {kind} export ({quantization}) failed its check: "
                       + "; ".join(problems) + ". Nothing was written." + hint)


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


# What a SavedModel folder holds; an export replaces only those the package wrote there.
SAVED_MODEL_ENTRIES = ("saved_model.pb", "variables", "assets", "fingerprint.pb")


def tflite_output(path: str | Path, reads=()) -> tuple[OutputFolder, str, str]:
    """The output folder of a `.tflite` file, its name, and the name of the metadata written
    beside it (`<file>.json`)."""
    out, name = file_output(path, reads)
    return out, name, name + ".json"


def export_saved_model(model: keras.Model, path: str | Path, *, batch_size: int = 1,
                       check_inputs: np.ndarray | None = None,
                       metadata: dict | None = None, reads=()) -> ExportReport:
    """Writes a verified SavedModel with the `classify` signature.

    Args:
        model: The Keras model (pruned models export as they are: kernels times masks).
        path: Folder to write (created). A SavedModel the package wrote there before is
            replaced; anything else in the folder stays, and one of the SavedModel's names
            (`SAVED_MODEL_ENTRIES`) that the package did not write there is refused.
        batch_size: Static batch of the signature (1 for phones).
        check_inputs: Inputs for the parity check (default: seeded random inputs).
        metadata: JSON-serialisable data written beside the model as `assets/metadata.json`.
        reads: Files the caller read the model from: never written over.

    Returns:
        An `ExportReport`; the SavedModel's logits are within 1e-4 (relative to the logits'
        scale) of the Keras model's, else `ExportError` is raised and nothing is left.

    Raises:
        OutputConflictError: the folder holds a SavedModel entry the package did not write,
            or another process writes in it.

    Example:
        >>> report = export_saved_model(model, "gesture_savedmodel")  # doctest: +SKIP
    """
    out = OutputFolder(path, reads)
    check_inputs = default_check_inputs(model) if check_inputs is None else check_inputs
    with out.locked(), out.staging() as staging:
        out.check_writable(SAVED_MODEL_ENTRIES)
        _write_archive(model, staging, batch_size)
        if metadata is not None:
            (staging / "assets").mkdir(exist_ok=True)
            (staging / "assets" / "metadata.json").write_text(json.dumps(metadata, indent=2))
        signature = tf.saved_model.load(str(staging)).signatures[SIGNATURE]
        output = output_name(model)
        parity = _compare(model, lambda b: signature(**{INPUT_NAME: tf.constant(b)})[output],
                          batch_size, "none", check_inputs)
        if parity.problems("none"):
            raise _refusal("SavedModel", "none", parity.problems("none"))
        for name in SAVED_MODEL_ENTRIES:
            if (staging / name).exists():
                out.install(name, staging / name)
            else:
                out.remove(name)  # a recorded entry of an earlier export
    return ExportReport(str(out.path), "saved_model", "none", _size(out.path),
                        parity.max_abs_diff, parity.tolerance, parity.samples)


def _converter(saved_model: Path, quantization: str, sparse: bool,
               representative: np.ndarray | None, batch_size: int):
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model),
                                                         signature_keys=[SIGNATURE])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    optimizations = []
    if quantization != "none":
        optimizations.append(tf.lite.Optimize.DEFAULT)
    if quantization == "fp16":
        converter.target_spec.supported_types = [tf.float16]
    if quantization in CALIBRATED:
        if representative is None or len(representative) == 0:
            raise ValueError(f"{quantization} quantization needs a representative set: pass "
                             "representative= (or --dataset on the command line).")
        converter.representative_dataset = lambda: (
            [batch] for batch, _ in _batches(representative, batch_size))
        converter.target_spec.supported_ops = [INTEGER_OPS[quantization]]
    if sparse:
        optimizations.append(tf.lite.Optimize.EXPERIMENTAL_SPARSITY)
    converter.optimizations = optimizations
    return converter


def _litert_runner(path: Path, output: str) -> Callable:
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_path=str(path)).get_signature_runner(SIGNATURE)
    return lambda batch: runner(**{INPUT_NAME: batch})[output]


def export_tflite(
    model: keras.Model,
    path: str | Path,
    *,
    quantization: str = "none",
    batch_size: int = 1,
    sparse: bool = False,
    representative: np.ndarray | None = None,
    check_inputs: np.ndarray | None = None,
    labelled_inputs: np.ndarray | None = None,
    metadata: dict | None = None,
    gpu_engine: str = "auto",
    labelled_targets: np.ndarray | None = None,
    write_anyway: bool = False,
    reads=(),
) -> ExportReport:
    """Writes a verified TFLite (LiteRT) model with the `classify` signature.

    The file is converted from a static-batch SavedModel with builtin ops, optionally
    quantized, loaded in `ai_edge_litert` and run on check inputs; it is kept only if its
    logits are close to the Keras model's (fp32: 1e-4 relative to the logits' scale) and, given
    `labelled_inputs`, its top-1 class agrees with Keras often enough (int8: 98%). The static
    GPU checker runs on the result, and where LiteRT's GPU engine is installed
    (`gpu_engine.gpu_engine_missing()` is None) the file is loaded on it with no CPU fallback
    and its logits compared with the CPU runtime's on the check inputs, to the same tolerance.
    A file the engine refuses is written (the report says so); one it runs wrongly is not.

    Args:
        model: The Keras model.
        path: The `.tflite` file to write, and `<file>.json` beside it with `metadata`. An
            existing one is replaced only if the package wrote it there (its folder's
            `.gcnprune/written.json` records it).
        quantization: `"none"` (float32), `"fp16"` (float16 weights), `"dynamic"` (int8
            weights, float activations), `"int8"` (full integer, float input and output) or
            `"int16x8"` (int8 weights, int16 activations, float input and output: the
            converter's 16x8 mode, for models whose int8 activations lose too much).
        batch_size: Static batch (1 for phones).
        sparse: Encode sparse weights (smaller file; the runtime densifies them on load).
        representative: Samples for int8 and int16x8 calibration (a few hundred training
            inputs).
        check_inputs: Inputs for the logits comparison (default: seeded random inputs).
        labelled_inputs: Real samples (for example a test split) for the top-1 agreement.
        metadata: What `export_metadata` returns: embedded in the file as JSON (see
            `read_metadata`) and written beside it as `<file>.json`, and as the standard
            `TFLITE_METADATA` with a packed `labels.txt` (see `read_standard_metadata`).
        gpu_engine: `"auto"` (run LiteRT's GPU engine where it is installed), `"require"`
            (raise `GpuEngineUnavailable` where it is not) or `"off"`.
        labelled_targets: The classes of `labelled_inputs`: the report (and a refusal) then
            gives the exported model's own top-1 accuracy next to the Keras model's.
        write_anyway: Write a file whose check failed instead of raising, with the check's
            numbers under `verification` in its metadata and in `report.problems`.
        reads: Files the caller read the model from: never written over.

    Returns:
        An `ExportReport`. A failed check raises `ExportError` with the numbers and leaves no
        file behind.

    Raises:
        OutputConflictError: the file (or its `.json`) exists and was not written by the
            package, or is one the export reads, or another process writes in its folder.

    Example:
        >>> report = export_tflite(model, "gesture.tflite", quantization="fp16")  # doctest: +SKIP
        >>> report.gpu_findings  # doctest: +SKIP
        []
    """
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization must be one of {QUANTIZATIONS}, got {quantization!r}.")
    if gpu_engine not in GPU_ENGINE_MODES:
        raise ValueError(f"gpu_engine must be one of {GPU_ENGINE_MODES}, got {gpu_engine!r}.")
    out, name, sidecar = tflite_output(path, reads)
    check_inputs = default_check_inputs(model) if check_inputs is None else check_inputs
    if quantization in CALIBRATED and representative is not None:
        check_inputs = representative[:len(check_inputs)]
    with out.locked(), out.staging() as staging:
        out.check_writable([name, sidecar])
        staging.mkdir()
        _write_archive(model, staging / "saved_model", batch_size)
        converted = _converter(staging / "saved_model", quantization, sparse, representative,
                               batch_size).convert()
        data = _embedded(converted, metadata)
        staged_file = staging / name
        staged_file.write_bytes(data)
        parity = _compare(model, _litert_runner(staged_file, output_name(model)), batch_size,
                          quantization, check_inputs, labelled_inputs, labelled_targets)
        problems = parity.problems(quantization)
        if problems and not write_anyway:
            raise _refusal("TFLite", quantization, problems)
        if problems:  # written on request, with the failed check's numbers in its metadata
            metadata = {**(metadata or {}), "verification": {
                "passed": False, "problems": problems, **asdict(parity)}}
            data = _embedded(converted, metadata)
            staged_file.write_bytes(data)
        findings = [str(f) for f in check_gpu(data)]
        engine, engine_skipped = _gpu_engine_check(staged_file, gpu_engine, quantization,
                                                   check_inputs)
        target = out.install(name, staged_file)
        if metadata is None:
            out.remove(sidecar)  # an earlier export's, which would describe another file
        else:
            out.write_text(sidecar, json.dumps(metadata, indent=2))
    return ExportReport(str(target), "tflite", quantization, target.stat().st_size,
                        parity.max_abs_diff, parity.tolerance, parity.samples,
                        parity.top1_agreement, findings, engine, engine_skipped,
                        top1_accuracy=parity.top1_accuracy,
                        keras_top1_accuracy=parity.keras_top1_accuracy, problems=problems)


def _embedded(converted: bytes, metadata: dict | None) -> bytes:
    """The converted model with the package's metadata and, for an export's metadata, the
    standard TFLite metadata and labels (last: they are appended after the flatbuffer)."""
    if metadata is None:
        return converted
    data = with_metadata(converted, metadata)
    complete = all(key in metadata for key in STANDARD_KEYS)
    return with_standard_metadata(data, metadata) if complete else data


def _gpu_engine_check(path: Path, mode: str, quantization: str,
                      check_inputs: np.ndarray) -> tuple[GpuEngineCheck | None, str | None]:
    """Runs the staged file on LiteRT's GPU engine; returns (check, why it was not run)."""
    if mode == "off":
        return None, "not asked for (gpu_engine='off')"
    missing = gpu_engine_missing()
    if missing is not None:
        if mode == "require":
            raise GpuEngineUnavailable(f"gpu_engine='require', but LiteRT's GPU engine cannot "
                                       f"run here: {missing}")
        return None, missing
    check = check_gpu_engine(path, [check_inputs], tolerance=TOLERANCES[quantization])
    if check.status == "wrong":
        raise ExportError(
            f"The TFLite export ({quantization}) failed its check on LiteRT's GPU engine: "
            f"{check}. A phone's GPU would return wrong scores; nothing was written. Export "
            "with gpu_engine='off' (--gpu-engine off) for a file meant for the CPU only.")
    return check, None


def litert_latency_ms(path: str | Path, runs: int = 50, threads: int = 1) -> float:
    """Median LiteRT CPU latency of one `classify` call, in milliseconds (inputs: zeros)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path), num_threads=threads)
    runner = interpreter.get_signature_runner(SIGNATURE)
    details = runner.get_input_details()[INPUT_NAME]
    batch = np.zeros(details["shape"], dtype=details["dtype"])
    runner(**{INPUT_NAME: batch})
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        runner(**{INPUT_NAME: batch})
        times.append(time.perf_counter() - started)
    return float(np.median(times) * 1000)
