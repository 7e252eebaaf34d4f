"""The README's picture of the web app (docs/app.png): a model trained on the built-in gestures,
exported with raw input, served by `gcnprune app`, playing test clips as one stream in Chromium.

    python benchmarks/app_screenshot.py [--out docs/app.png]

Needs `gcnprune app --install` and Debian's chromium.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
from pathlib import Path

import numpy as np

from keras_gcnprune.app import make_server
from keras_gcnprune.data import Preprocessing, make_synthetic_gestures
from keras_gcnprune.export import export_run
from keras_gcnprune.training import TrainConfig, train

CHROMIUM_ARGS = ["--enable-unsafe-webgpu", "--no-sandbox", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/app.png")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        train(TrainConfig(epochs=20, preprocessing=Preprocessing(frames=32)), folder / "run",
              verbose=0)
        export_run(folder / "run", tflite=folder / "gesture.tflite", raw_input=True,
                   probabilities=True, gpu_engine="off")
        dataset = make_synthetic_gestures()
        test = np.flatnonzero(dataset.meta["partition"] == "test")[:6]
        frames = np.concatenate([dataset.sequences[i] for i in test])
        server = make_server(folder / "gesture.tflite", port=0)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium",
                                                 args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.goto(f"http://127.0.0.1:{server.server_address[1]}/")
            page.wait_for_selector("body[data-ready=true]", timeout=120_000)
            page.evaluate("(f) => window.gcnpruneApp.play(f)", frames.tolist())
            page.screenshot(path=args.out, full_page=True)
            browser.close()
        server.shutdown()
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
