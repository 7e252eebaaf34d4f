"""int8 against float on real data: top-1 agreement with Keras and accuracy, per calibration.

int16x8 (int8 weights, int16 activations) is measured beside it, once.

For each trained run (and, for a pruned run, its compacted model), the float TFLite file and
int8 files calibrated with each setting (number of training samples, random or stratified by
class) are evaluated side by side on the run's validation part and on its test split: top-1
agreement with the Keras model, and top-1 accuracy of each file next to the Keras model's. The
calibration to recommend is the one with the best validation agreement; the test columns are
reported, never used to choose. Where LiteRT's `ai-edge-quantizer` is installed (`pip install
ai-edge-quantizer`; not a dependency of the package), its static int8-weight recipes with int8
and with int16 activations are measured beside the converter's int8 (their files take
quantized inputs, which the evaluation quantizes with the input's scale and zero point).

    python benchmarks/int8.py --out runs/int8 sbu_dense=runs/sbu_fold1 jhmdb_tcp=runs/jhmdb_tcp

Prints the results as JSON and as a Markdown page, and writes OUT/results.json and
OUT/results.md (docs/int8.md is a copy).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import keras
import numpy as np
from ai_edge_litert.interpreter import Interpreter
from results_page import machine_line

from keras_gcnprune.bench.results import machine
from keras_gcnprune.export import export_tflite
from keras_gcnprune.export.convert import INPUT_NAME, SIGNATURE
from keras_gcnprune.export.run import calibration_indices, compacted_with_check
from keras_gcnprune.pruning.masks import masked_layers
from keras_gcnprune.training import load_run, run_data

CALIBRATIONS = [(64, "random"), (256, "random"), (256, "stratified"), (1024, "stratified")]


AEQ_RECIPES = {"aeq w8a8": "static_wi8_ai8", "aeq w8a16": "static_wi8_ai16"}


def _tflite_classes(path: Path, x: np.ndarray) -> np.ndarray:
    runner = Interpreter(model_path=str(path)).get_signature_runner(SIGNATURE)
    details = runner.get_input_details()[INPUT_NAME]
    if details["dtype"] != np.float32:  # a quantized input: quantize as the file says
        scale, zero_point = details["quantization"]
        limits = np.iinfo(details["dtype"])
        x = np.clip(np.round(x / scale + zero_point), limits.min, limits.max)
        x = x.astype(details["dtype"])
    return np.array([runner(**{INPUT_NAME: sample[None]})["logits"][0].argmax() for sample in x])


def _aeq_files(float_file: Path, representative: np.ndarray) -> dict[str, Path]:
    """Files quantized by ai-edge-quantizer's static recipes, or none where it is absent."""
    try:
        from ai_edge_quantizer import quantizer, recipe
    except ImportError:
        return {}
    files = {}
    for label, name in AEQ_RECIPES.items():
        quantizing = quantizer.Quantizer(str(float_file), getattr(recipe, name)())
        ranges = quantizing.calibrate({SIGNATURE: [{INPUT_NAME: r[None]} for r in representative]})
        path = float_file.with_name(float_file.stem + f"_{name}.tflite")
        quantizing.quantize(ranges).export_model(str(path), overwrite=True)
        files[f"{label} 256 random"] = path
    return files


def _keras_classes(model: keras.Model, x: np.ndarray) -> np.ndarray:
    return np.concatenate([model(x[i:i + 64], training=False).numpy().argmax(-1)
                           for i in range(0, len(x), 64)])


def _scores(classes: np.ndarray, keras_classes: np.ndarray, y: np.ndarray) -> dict:
    return {"agreement": round(float(np.mean(classes == keras_classes)), 4),
            "accuracy": round(float(np.mean(classes == y)), 4)}


def measure(name: str, run: Path, on_error: str, folder: Path) -> list[dict]:
    model, info = load_run(run)
    _, data = run_data(info, on_error=on_error)
    parts = {"validation": data.validation, "test": data.test}
    (x_train, y_train) = data.train
    variants = {"as trained": model}
    if masked_layers(model):
        variants["compacted"] = compacted_with_check(model, data.test[0][:32])[0]
    rows = []
    for variant, exported in variants.items():
        keras_classes = {part: _keras_classes(exported, x) for part, (x, _) in parts.items()}
        row = {"run": name, "variant": variant,
               "keras": {part: round(float(np.mean(keras_classes[part] == y)), 4)
                         for part, (_, y) in parts.items()}}
        settings = [("float32", "none", None),
                    *((f"int8 {n} {s}", "int8", (n, s)) for n, s in CALIBRATIONS),
                    ("int16x8 256 random", "int16x8", (256, "random"))]
        for label, quantization, calibration in settings:
            path = folder / f"{name}_{variant}_{label.replace(' ', '_')}.tflite"
            representative = None if calibration is None else \
                x_train[calibration_indices(np.asarray(y_train), *calibration)]
            export_tflite(exported, path, quantization=quantization,
                          representative=representative,
                          write_anyway=True, gpu_engine="off")
            row[label] = {part: _scores(_tflite_classes(path, x), keras_classes[part], y)
                          for part, (x, y) in parts.items()}
        float_file = folder / f"{name}_{variant}_float32.tflite"
        representative = x_train[calibration_indices(np.asarray(y_train), 256, "random")]
        for label, path in _aeq_files(float_file, representative).items():
            row[label] = {part: _scores(_tflite_classes(path, x), keras_classes[part], y)
                          for part, (x, y) in parts.items()}
        rows.append(row)
    return rows


def table(rows: list[dict]) -> str:
    labels = [k for k in rows[0] if k.startswith(("float32", "int8", "int16x8", "aeq"))]
    lines = ["| run | variant | Keras top-1 val / test | "
             + " | ".join(f"{label}: agreement val / test, top-1 test" for label in labels)
             + " |", "|---" * (3 + len(labels)) + "|"]
    for row in rows:
        cells = [f"{row[label]['validation']['agreement']:.1%} / "
                 f"{row[label]['test']['agreement']:.1%}, {row[label]['test']['accuracy']:.1%}"
                 for label in labels]
        lines.append(f"| {row['run']} | {row['variant']} | {row['keras']['validation']:.1%} / "
                     f"{row['keras']['test']:.1%} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="NAME=RUN_DIRECTORY pairs")
    parser.add_argument("--out", default="runs/int8")
    parser.add_argument("--on-error", default="skip", choices=["raise", "skip"])
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for pair in args.runs:
            name, run = pair.split("=", 1)
            rows += measure(name, Path(run), args.on_error, Path(folder))
    best = {}
    for row in rows:
        int8 = {k: v for k, v in row.items() if k.startswith(("int8", "aeq"))}  # full int8
        best[f"{row['run']} {row['variant']}"] = max(
            int8, key=lambda k: int8[k]["validation"]["agreement"])
    (out / "results.json").write_text(json.dumps(
        {"settings": vars(args), "machine": machine(), "rows": rows,
         "best_on_validation": best}, indent=2))
    page = "\n".join([
        "# int8 against float on real data", "",
        "Generated by `python benchmarks/int8.py`; do not edit by hand. Command: "
        f"`python benchmarks/int8.py {' '.join(sys.argv[1:])}`.", "",
        machine_line({"machine": machine()}), "",
        "Each cell: top-1 agreement with the Keras model on the validation part / on the test "
        "split, then the file's own top-1 accuracy on the test split. `int8 N sampling`: the "
        "TFLite converter's full-integer int8 (float input and output), calibrated on N "
        "training samples; `int16x8`: the converter's int8 weights with int16 activations "
        "(float input and output; not for the GPU engine, which refuses int16 tensors, and "
        "slow on the CPU, whose int16 kernels are reference ones); `aeq`: ai-edge-quantizer's "
        "static recipes (int8 input).", "",
        table(rows), "", "Best calibration by validation agreement (test never used to choose):",
        "", *[f"- {key}: {value}" for key, value in best.items()], ""])
    (out / "results.md").write_text(page)
    print(json.dumps(rows, indent=2))
    print(page)


if __name__ == "__main__":
    main()
