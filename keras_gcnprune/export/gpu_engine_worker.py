"""Runs one TFLite model on LiteRT's GPU engine (GPU only) and on its CPU runtime.

Started by `keras_gcnprune.export.gpu_engine` as a script in a child process, for three reasons:
the Vulkan loader reads `VK_ICD_FILENAMES` and `XDG_RUNTIME_DIR` once, when the process first
creates a device; the engine writes its refusals to the process's stderr, which only a child's
can be captured; and a crash inside the engine ends the child, not the caller. It imports
nothing but numpy and `ai_edge_litert`, so it starts in a fraction of a second.

Usage: python gpu_engine_worker.py MODEL.tflite INPUTS.npz RESULT_DIR

INPUTS.npz holds one array per model input (`input_0`, ...), each of shape (samples, ...), the
rest of the shape that of the model's input without its batch. RESULT_DIR receives
`result.json` (what loaded, the errors) and `outputs.npz` (`cpu_<k>` and `gpu_<k>` for output
k, each of shape (samples, ...)).
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path

import numpy as np


def _signature(model) -> tuple[str, list[dict], list[dict]]:
    key = model.get_signature_by_index(0)["key"]
    inputs = list(model.get_input_tensor_details(key).values())
    outputs = list(model.get_output_tensor_details(key).values())
    return key, inputs, outputs


def _fit_batch(model, key: str, inputs: list[dict], arrays: list[np.ndarray]) -> list[dict]:
    """Resizes dynamic batch dimensions to 1; returns the input details to run with."""
    for index, detail in enumerate(inputs):
        if any(d < 0 for d in detail["shape"]):
            shape = [1, *arrays[index].shape[1:]]
            model.resize_input_tensor(0, index, shape)
    return list(model.get_input_tensor_details(key).values())


def _run(model, arrays: list[np.ndarray]) -> list[np.ndarray]:
    """Outputs of every sample, batched to the model's static batch (last batch padded)."""
    key, inputs, _ = _signature(model)
    inputs = _fit_batch(model, key, inputs, arrays)
    batch = int(inputs[0]["shape"][0])
    samples = len(arrays[0])
    in_buffers = model.create_input_buffers(0)
    out_buffers = model.create_output_buffers(0)
    _, _, outputs = _signature(model)
    collected: list[list[np.ndarray]] = [[] for _ in outputs]
    for start in range(0, samples, batch):
        real = min(batch, samples - start)
        for buffer, array, detail in zip(in_buffers, arrays, inputs):
            chunk = array[start:start + batch]
            if real < batch:
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], batch - real, axis=0)])
            buffer.write(np.ascontiguousarray(chunk, dtype=np.dtype(detail["dtype"])))
        model.run_by_index(0, in_buffers, out_buffers)
        for k, (buffer, detail) in enumerate(zip(out_buffers, outputs)):
            shape = [int(d) for d in detail["shape"]]
            values = buffer.read(int(np.prod(shape)), np.dtype(detail["dtype"]))
            collected[k].append(values.reshape(shape)[:real])
    return [np.concatenate(parts) for parts in collected]


def _load(path: str, accelerator):
    from ai_edge_litert.compiled_model import CompiledModel

    return CompiledModel.from_file(path, hardware_accel=accelerator)


def main(model_path: str, inputs_path: str, result_dir: str) -> None:
    from ai_edge_litert.hardware_accelerator import HardwareAccelerator

    with np.load(inputs_path) as stored:
        arrays = [stored[f"input_{i}"] for i in range(len(stored.files))]
    result: dict = {"cpu_loaded": False, "gpu_loaded": False, "cpu_error": None,
                    "gpu_error": None, "finished": []}
    outputs: dict[str, np.ndarray] = {}
    for name, accelerator in (("cpu", HardwareAccelerator.CPU),
                              ("gpu", HardwareAccelerator.GPU)):
        try:
            model = _load(model_path, accelerator)
            result[f"{name}_loaded"] = True
            _write(result_dir, result, outputs)
            outputs |= {f"{name}_{k}": v for k, v in enumerate(_run(model, arrays))}
        except Exception as error:  # the engine reports every refusal as a RuntimeError
            result[f"{name}_error"] = f"{type(error).__name__}: {error}".strip()
            result[f"{name}_traceback"] = traceback.format_exc()
        result["finished"].append(name)
        _write(result_dir, result, outputs)
        sys.stderr.flush()


def _write(result_dir: str, result: dict, outputs: dict[str, np.ndarray]) -> None:
    """Writes what is known so far, so that a crash of the engine leaves the CPU's part."""
    np.savez(Path(result_dir, "outputs.npz"), **outputs)
    Path(result_dir, "result.json").write_text(json.dumps(result))

if __name__ == "__main__":
    main(*sys.argv[1:4])
