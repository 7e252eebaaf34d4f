"""Runs a TFLite model on LiteRT's own GPU engine and checks it against LiteRT's CPU runtime.

`ai-edge-litert` ships LiteRT's GPU accelerator (`libLiteRtWebGpuAccelerator.so`: the ML Drift
engine over WebGPU and Vulkan), the engine that LiteRT 2.x uses on Android phones. A machine
without a GPU runs it on SwiftShader, the software Vulkan device that Debian's `chromium`
package installs; Mesa's lavapipe is refused by the engine's WebGPU layer.

Two facts decide how the check is made:

- Only a load with the GPU alone proves that every operator runs on the GPU: with a CPU fallback
  the engine reports "fully accelerated" for models whose operators partly ran on the CPU.
- Loading is not enough: some operators load and run on the GPU with wrong results, so the
  outputs are compared with the CPU runtime's on every check.

SwiftShader computes in float32. Phones run the engine in float16 by default, so a model that
passes here can still differ on a phone by float16 rounding (about 1e-3 relative per layer).
"""

from __future__ import annotations

import ctypes.util
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tensorflow.lite.python import schema_py_generated as schema

from keras_gcnprune.export.flatbuffer import read_model

SWIFTSHADER_ICD = Path("/usr/lib/chromium/vk_swiftshader_icd.json")
SYSTEM_ICD_FOLDERS = (Path("/usr/share/vulkan/icd.d"), Path("/etc/vulkan/icd.d"))
ACCELERATOR_LIBRARY = "libLiteRtWebGpuAccelerator.so"
WORKER = Path(__file__).with_name("gpu_engine_worker.py")
INSTALL_HINT = ("On Debian or Ubuntu, as root: `apt-get install -y --no-install-recommends "
                "chromium libvulkan1` (SwiftShader, a software Vulkan device, and the Vulkan "
                "loader).")
STATUSES = ("runs", "refused", "wrong")
# Lines of the engine's log that are about other accelerators, not about the model.
_UNRELATED_LOG = ("openvino", "compiler_plugin", "npu_registry", "cuda", "InitGoogle")
_MAX_MESSAGES = 12
_SOURCE_LOCATION = re.compile(r"^(\w+: )?ERROR: \[[^\]]*\]$")
_OPERATOR_LINE = re.compile(r"^(?!INFO|WARNING|ERROR)[A-Z][A-Z0-9_]*: ")


class GpuEngineUnavailable(OSError):
    """LiteRT's GPU engine cannot run on this machine; the message says what to install."""


@dataclass(frozen=True)
class GpuEngineCheck:
    """What LiteRT's GPU engine did with a model, next to LiteRT's CPU runtime.

    Args:
        status: `"runs"` (loaded with the GPU alone and its outputs match the CPU runtime's),
            `"refused"` (it would not load or run with the GPU alone) or `"wrong"` (it ran, and
            its outputs differ from the CPU runtime's by more than the tolerance).
        device: The Vulkan device the engine ran on.
        samples: Number of inputs run.
        max_abs_diff: Largest difference between GPU and CPU outputs (None unless it ran).
        tolerance: The bound that difference had to meet.
        messages: The engine's own error messages when it refused the model.
    """

    status: str
    device: str
    samples: int
    max_abs_diff: float | None
    tolerance: float
    messages: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.status == "runs"

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        if self.status == "refused":
            first = self.messages[0] if self.messages else "no message"
            return f"GPU engine ({self.device}): refused the model GPU-only: {first}"
        verdict = "runs GPU-only" if self.passed else "RUNS BUT IS WRONG"
        return (f"GPU engine ({self.device}): {verdict}, max |GPU - CPU| = "
                f"{self.max_abs_diff:.3g} on {self.samples} inputs (tolerance "
                f"{self.tolerance:.3g})")


def _vulkan_device() -> tuple[dict[str, str], str] | None:
    """Environment for the Vulkan loader and the device's name, or None without a device."""
    if os.environ.get("VK_ICD_FILENAMES"):
        return {}, f"Vulkan ICD {os.environ['VK_ICD_FILENAMES']}"
    if SWIFTSHADER_ICD.is_file():
        return {"VK_ICD_FILENAMES": str(SWIFTSHADER_ICD)}, "SwiftShader, software Vulkan, fp32"
    if any(any(folder.glob("*.json")) for folder in SYSTEM_ICD_FOLDERS if folder.is_dir()):
        return {}, "the system's Vulkan driver"
    return None


def gpu_engine_missing() -> str | None:
    """What this machine lacks to run LiteRT's GPU engine, or None when it can run it.

    Example:
        >>> reason = gpu_engine_missing()
        >>> reason is None or "apt-get install" in reason or "ai-edge-litert" in reason
        True
    """
    try:
        import ai_edge_litert
    except ImportError:
        return "ai-edge-litert is not installed: `pip install ai-edge-litert`."
    if not Path(ai_edge_litert.__file__).with_name(ACCELERATOR_LIBRARY).is_file():
        return (f"this ai-edge-litert ({ai_edge_litert.__file__}) has no GPU accelerator "
                f"({ACCELERATOR_LIBRARY}); install ai-edge-litert 2.3 or newer.")
    if ctypes.util.find_library("vulkan") is None:
        return f"the Vulkan loader (libvulkan.so.1) is not installed. {INSTALL_HINT}"
    if _vulkan_device() is None:
        return f"no Vulkan device was found. {INSTALL_HINT}"
    return None


def prepare_gpu_engine() -> str:
    """Sets up this process to run LiteRT's GPU engine in it; returns the device's name.

    The Vulkan loader reads `VK_ICD_FILENAMES` and `XDG_RUNTIME_DIR` when the process first
    creates a GPU model, so call this before that; variables already set are kept.

    Raises:
        GpuEngineUnavailable: this machine cannot run the engine (the message says what to
            install).
    """
    missing = gpu_engine_missing()
    if missing is not None:
        raise GpuEngineUnavailable(f"LiteRT's GPU engine cannot run here: {missing}")
    device_env, device = _vulkan_device()
    for name, value in device_env.items():
        os.environ.setdefault(name, value)
    if not os.environ.get("XDG_RUNTIME_DIR"):
        os.environ["XDG_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="gcnprune-xdg-")
    return device


def _input_specs(model: schema.ModelT) -> list[tuple[list[int], type]]:
    subgraph = model.subgraphs[0]
    types = {schema.TensorType.FLOAT32: np.float32, schema.TensorType.INT32: np.int32,
             schema.TensorType.INT8: np.int8, schema.TensorType.UINT8: np.uint8}
    specs = []
    for index in subgraph.inputs:
        tensor = subgraph.tensors[index]
        specs.append(([int(d) for d in tensor.shape], types.get(tensor.type, np.float32)))
    return specs


MAX_SAMPLE_VALUES = 2**26  # 256 MiB of float32 inputs


def sample_inputs(source: str | Path | bytes, samples: int = 8, seed: int = 0) -> list[np.ndarray]:
    """Seeded inputs of a TFLite model's input shapes: standard normal floats, zero integers.

    Returns:
        One array per model input, of shape (samples, *input shape without its batch).
    """
    rng = np.random.default_rng(seed)
    arrays = []
    for shape, dtype in _input_specs(read_model(source)):
        full = (samples, *shape[1:])
        values = int(np.prod(full, dtype=np.float64))  # float: no overflow on hostile shapes
        if values > MAX_SAMPLE_VALUES:
            raise ValueError(f"{samples} inputs of shape {tuple(shape)} would hold "
                             f"{values:,} values, more than the "
                             f"{MAX_SAMPLE_VALUES:,} a check generates: check fewer samples, "
                             "or a model of a smaller input.")
        if np.issubdtype(dtype, np.floating):
            arrays.append(rng.standard_normal(full).astype(dtype))
        else:
            arrays.append(np.zeros(full, dtype=dtype))
    return arrays


def _engine_messages(error: str | None, stderr: str) -> list[str]:
    """The engine's words about the model: its error, and the operators it listed as refused."""
    lines = [line.lstrip("└ ").strip() for line in (error or "").splitlines()]
    lines = [line for line in lines if line and not _SOURCE_LOCATION.match(line)]
    listing = False
    for line in (raw.strip() for raw in stderr.splitlines()):
        if not line or any(word in line for word in _UNRELATED_LOG):
            continue
        if "operations are not supported" in line:
            listing = True
            lines.append(line.removeprefix("ERROR: "))
        elif listing and (_OPERATOR_LINE.match(line) or "operations will run" in line):
            lines.append(line)
        else:
            listing = False
            if line.startswith("ERROR") and not _SOURCE_LOCATION.match(line):
                lines.append(line.removeprefix("ERROR: "))
    return list(dict.fromkeys(lines))[:_MAX_MESSAGES]


def _run_worker(path: Path, inputs: list[np.ndarray], timeout: float,
                device_env: dict[str, str]) -> tuple[dict, dict[str, np.ndarray], str]:
    with tempfile.TemporaryDirectory(prefix="gcnprune-gpu-") as scratch:
        runtime_dir = Path(scratch, "xdg")
        runtime_dir.mkdir(mode=0o700)
        np.savez(Path(scratch, "inputs.npz"),
                 **{f"input_{i}": array for i, array in enumerate(inputs)})
        env = {**os.environ, **device_env, "XDG_RUNTIME_DIR": str(runtime_dir)}
        try:
            finished = subprocess.run(
                [sys.executable, str(WORKER), str(path), str(Path(scratch, "inputs.npz")),
                 scratch], env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as expired:
            raise GpuEngineUnavailable(
                f"LiteRT's GPU engine did not finish {path} within {timeout:g} s.") from expired
        result_file = Path(scratch, "result.json")
        result = json.loads(result_file.read_text()) if result_file.is_file() else {
            "cpu_loaded": False, "gpu_loaded": False, "finished": []}
        outputs = {}
        if Path(scratch, "outputs.npz").is_file():
            with np.load(Path(scratch, "outputs.npz")) as stored:
                outputs = {name: stored[name] for name in stored.files}
    for name in ("cpu", "gpu"):
        if name not in result["finished"] and not result.get(f"{name}_error"):
            result[f"{name}_error"] = _ended_early(finished, name)
    return result, outputs, finished.stderr


def _ended_early(finished: subprocess.CompletedProcess, runtime: str) -> str:
    code = finished.returncode
    how = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
    last = [line for line in finished.stderr.strip().splitlines()
            if not line.startswith(("INFO", "I0000", "W0000", "WARNING"))][-2:]
    said = f": {' | '.join(last)}" if last else ""
    return (f"the {runtime.upper()} runtime crashed ({how}) while loading or running the "
            f"model{said}")


def _max_difference(outputs: dict[str, np.ndarray]) -> tuple[float, float]:
    """Largest |GPU - CPU| over every output (inf where only one is finite), and CPU scale."""
    worst, scale = 0.0, 0.0
    for name in (n for n in outputs if n.startswith("cpu_")):
        cpu = outputs[name].astype(np.float64)
        gpu = outputs["gpu_" + name[4:]].astype(np.float64)
        difference = np.abs(gpu - cpu)
        difference[np.isnan(gpu) != np.isnan(cpu)] = np.inf
        difference[np.isnan(gpu) & np.isnan(cpu)] = 0.0
        worst = max(worst, float(np.max(difference, initial=0.0)))
        scale = max(scale, float(np.max(np.abs(np.nan_to_num(cpu)), initial=0.0)))
    return worst, scale


def check_gpu_engine(source: str | Path | bytes, inputs: list[np.ndarray] | None = None,
                     tolerance: float = 1e-4, timeout: float = 300.0) -> GpuEngineCheck:
    """Loads a TFLite model on LiteRT's GPU engine with no CPU fallback, runs it, and compares
    its outputs with LiteRT's CPU runtime on the same inputs.

    Args:
        source: A `.tflite` path or its bytes.
        inputs: One array per model input, each (samples, *input shape without its batch);
            default: 8 seeded random samples (`sample_inputs`).
        tolerance: Largest allowed |GPU - CPU|, as a fraction of the CPU outputs' largest
            magnitude (at least 1).
        timeout: Seconds the engine may take before the check gives up.

    Returns:
        A `GpuEngineCheck`: `status` "runs", "refused" (with the engine's messages) or "wrong".

    Raises:
        GpuEngineUnavailable: this machine cannot run the engine (the message says what to
            install), the engine hung, or the CPU runtime itself could not run the model.

    Example:
        >>> check = check_gpu_engine("gesture.tflite")  # doctest: +SKIP
        >>> check.status, check.max_abs_diff  # doctest: +SKIP
        ('runs', 2.4e-06)
    """
    missing = gpu_engine_missing()
    if missing is not None:
        raise GpuEngineUnavailable(f"LiteRT's GPU engine cannot run here: {missing}")
    device_env, device = _vulkan_device()
    name = "the model bytes" if isinstance(source, bytes | bytearray) else str(source)
    inputs = sample_inputs(source) if inputs is None else [np.asarray(a) for a in inputs]
    with tempfile.TemporaryDirectory(prefix="gcnprune-model-") as folder:
        if isinstance(source, bytes | bytearray):
            path = Path(folder, "model.tflite")
            path.write_bytes(source)
        else:
            path = Path(source)
            read_model(path)
        result, outputs, stderr = _run_worker(path, inputs, timeout, device_env)
    samples = len(inputs[0]) if inputs else 0
    if not result.get("cpu_loaded") or result.get("cpu_error"):
        raise GpuEngineUnavailable(
            f"LiteRT's CPU runtime could not run {name}, so the GPU engine has nothing to be "
            f"compared with: {result.get('cpu_error')}")
    if not result.get("gpu_loaded") or result.get("gpu_error"):
        return GpuEngineCheck("refused", device, samples, None, tolerance,
                              _engine_messages(result.get("gpu_error"), stderr))
    worst, scale = _max_difference(outputs)
    bound = tolerance * max(1.0, scale)
    return GpuEngineCheck("runs" if worst <= bound else "wrong", device, samples, worst, bound)
