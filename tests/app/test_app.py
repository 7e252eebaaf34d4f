"""The web app in a real browser (Debian's chromium, driven by Playwright): the exported model
on LiteRT.js, WebGPU and wasm, against Python's LiteRT and StreamingClassifier on the same
stream; refusals; the record mode's archive training in Keras.

The browser tests need chromium and the app's packages (`gcnprune app --install`); they skip
without them, unless GCNPRUNE_REQUIRE_BROWSER=1 (CI sets it), where they fail instead."""

import json
import os
import shutil
import threading
import urllib.request
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from keras_gcnprune.app import app_home, check_app_model, make_server, missing_install
from keras_gcnprune.cli.main import main
from keras_gcnprune.data import Preprocessing, load_dataset, make_synthetic_gestures
from keras_gcnprune.deploy import (
    LiteRtClassifier,
    OnsetDetector,
    StreamingClassifier,
    detect_onsets,
    stream_decisions,
)
from keras_gcnprune.export.convert import TOLERANCES
from keras_gcnprune.training import TrainConfig, train
from tests.cli.conftest import invoke, refused

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SETTINGS = {"every": 3, "window": 20, "smoothing": 0.5, "threshold": 0.1}
CONFIRM = 2


def browser_missing() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"no chromium at {CHROMIUM} (apt-get install chromium)"
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[test]')"
    return missing_install()


def needs_browser():
    missing = browser_missing()
    if missing and os.environ.get("GCNPRUNE_REQUIRE_BROWSER") == "1":
        pytest.fail(f"GCNPRUNE_REQUIRE_BROWSER=1, but {missing}")
    if missing:
        pytest.skip(missing)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A raw-input export of a short training, and one without the package's metadata."""
    folder = tmp_path_factory.mktemp("app")
    train(TrainConfig(model="attention_gcn",
                      epochs=2, preprocessing=Preprocessing(frames=16)), folder / "run",
          verbose=0)
    assert invoke("export", folder / "run", "--tflite", folder / "raw.tflite", "--raw-input",
                  "--probabilities", "--gpu-engine", "off").exit_code == 0
    assert invoke("export", folder / "run", "--tflite", folder / "plain.tflite",
                  "--gpu-engine", "off").exit_code == 0
    from keras_gcnprune.export import export_tflite, with_raw_input
    from keras_gcnprune.training import load_run

    model, info = load_run(folder / "run")
    export_tflite(with_raw_input(model, Preprocessing(frames=16), info.layout),
                  folder / "bare.tflite", gpu_engine="off")
    return folder


def stream_of_clips(count=4):
    """Test clips of the synthetic gestures, played back to back, as raw frames."""
    dataset = make_synthetic_gestures()
    test = np.flatnonzero(dataset.meta["partition"] == "test")[:count]
    return np.concatenate([dataset.sequences[i] for i in test]).astype(np.float32)


def test_the_server_refuses_models_the_app_cannot_run_and_serves_only_its_files(exported,
                                                                                tmp_path):
    with pytest.raises(ValueError, match="carries no keras_gcnprune metadata"):
        check_app_model(exported / "bare.tflite")
    with pytest.raises(ValueError, match="takes preprocessed inputs"):
        check_app_model(exported / "plain.tflite")
    refused(invoke("app", exported / "plain.tflite"), "--raw-input --probabilities")
    assert "gcnprune app --install" in missing_install(tmp_path)
    fake = tmp_path / "node_modules"
    for package in ("@litertjs/core", "@mediapipe/hands"):
        (fake / package).mkdir(parents=True)
        (fake / package / "package.json").write_text("{}")
    server = make_server(exported / "raw.tflite", port=0, home=tmp_path)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        assert urllib.request.urlopen(base + "/model.tflite").read() == \
            (exported / "raw.tflite").read_bytes()
        assert b"gcnpruneApp" not in urllib.request.urlopen(base + "/").read()  # the page
        assert urllib.request.urlopen(base + "/vendor/@mediapipe/hands/package.json").read() \
            == b"{}"
        for outside in ("/../server.py", "/vendor/../../../etc/passwd", "/%2e%2e/server.py"):
            with pytest.raises(urllib.error.HTTPError, match="404"):
                urllib.request.urlopen(base + outside)
    finally:
        server.shutdown()
        server.server_close()


def test_without_npm_the_install_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setenv("GCNPRUNE_APP_HOME", str(tmp_path))
    refused(invoke("app", "--install"), "install Node.js 20 or newer with npm")
    assert app_home() == tmp_path and list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def page(exported):
    needs_browser()
    from playwright.sync_api import sync_playwright

    server = make_server(exported / "raw.tflite", port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[
            "--enable-unsafe-webgpu", "--no-sandbox", "--disable-background-networking",
            "--disable-component-update", "--no-first-run", "--disable-sync",
            "--disable-quic"])
        context = browser.new_context(accept_downloads=True)
        outside = []
        context.route("**/*", lambda route: route.continue_() if route.request.url.startswith(
            f"http://127.0.0.1:{server.server_address[1]}/") or route.request.url.startswith(
            ("data:", "blob:")) else (outside.append(route.request.url), route.abort()))
        opened = context.new_page()
        opened.base = f"http://127.0.0.1:{server.server_address[1]}/"
        opened.outside = outside
        yield opened
        browser.close()
    server.shutdown()
    server.server_close()


def open_app(page, query=""):
    page.goto(page.base + query)
    page.wait_for_selector("body[data-ready]", timeout=120_000)
    for name, value in {**SETTINGS, "confirm": CONFIRM}.items():
        page.fill(f"#{name}", str(value))
        page.dispatch_event(f"#{name}", "change")


def python_decisions(model_file, frames):
    """Python's decisions and onsets on the stream, with the page's settings."""
    model = LiteRtClassifier(model_file)
    decisions = stream_decisions(StreamingClassifier(model, **SETTINGS), frames)
    onsets = detect_onsets(StreamingClassifier(model, **SETTINGS),
                           OnsetDetector(confirm=CONFIRM, lag=SETTINGS["window"] // 2), frames)
    return ([{"frame": d.frame, "index": d.index, "label": d.label} for d in decisions],
            [asdict(onset) for onset in onsets])


@pytest.mark.parametrize("query, accelerator", [("", "webgpu"), ("?accelerator=wasm", "wasm")])
def test_the_page_decides_as_python_does_on_the_same_stream(page, exported, query,
                                                             accelerator):
    open_app(page, query)
    assert page.inner_text("#accelerator") == accelerator
    assert page.inner_text("#fully-accelerated") == \
        ("yes" if accelerator == "webgpu" else "no: CPU (wasm)")
    assert page.is_visible("#fallback") == (accelerator == "wasm")  # never a silent fallback
    labels = json.loads((exported / "raw.tflite.json").read_text())["labels"]
    assert ", ".join(labels) in page.inner_text("#model-status")  # from the file's metadata
    frames = stream_of_clips()
    played = page.evaluate("(f) => window.gcnpruneApp.play(f)", frames.tolist())
    decisions, onsets = python_decisions(exported / "raw.tflite", frames)
    assert len(decisions) > 10 and onsets
    assert [{k: d[k] for k in ("frame", "index", "label")} for d in played["decisions"]] == \
        decisions
    assert played["onsets"] == onsets
    # Outputs of single windows against Python's LiteRT, to the export's tolerance.
    reference = LiteRtClassifier(exported / "raw.tflite")
    for start in (0, 17, 40):
        window = frames[start:start + 16]
        ours = np.array(page.evaluate("(w) => window.gcnpruneApp.outputs(new Float32Array(w))"
                                      ".then((o) => Array.from(o))", window.ravel().tolist()))
        np.testing.assert_allclose(ours, reference.probabilities(window),
                                   atol=TOLERANCES["none"])
    assert page.outside == []  # nothing fetched from another host


def test_the_hand_tracker_runs_from_the_installed_packages_alone(page):
    open_app(page)
    found = page.evaluate("""async () => {
        const canvas = document.createElement('canvas');
        canvas.width = 320; canvas.height = 240;
        const context = canvas.getContext('2d');
        context.fillStyle = '#888'; context.fillRect(0, 0, 320, 240);
        return window.gcnpruneApp.handLandmarks(canvas);
    }""")
    assert found == []  # no hand in a grey image; the models loaded and ran
    assert page.outside == []


def test_a_model_without_metadata_is_refused_with_a_clear_message(page, exported):
    open_app(page)
    page.set_input_files("#model-file", str(exported / "bare.tflite"))
    page.wait_for_selector("body[data-ready=refused]")
    assert "carries no keras_gcnprune metadata" in page.inner_text("#model-status")
    page.set_input_files("#model-file", str(exported / "plain.tflite"))
    page.wait_for_function("document.querySelector('#model-status').textContent"
                           ".includes('preprocessed inputs')")


def test_recorded_clips_save_as_an_archive_that_trains(page, exported, tmp_path):
    open_app(page)
    page.fill("#fps", "1000")
    frames = stream_of_clips(2)
    for label in ("open", "close"):
        for clip in range(5):
            stream = tmp_path / f"{label}{clip}.json"
            stream.write_text(json.dumps({"frames": frames[clip * 7:clip * 7 + 30].tolist()}))
            page.fill("#record-label", label)
            page.click("#record-toggle")
            page.set_input_files("#stream-file", str(stream))
            page.wait_for_function("document.body.dataset.played !== undefined")
            page.evaluate("delete document.body.dataset.played")
            page.click("#record-toggle")
    assert page.inner_text("#record-status") == "10 clips: open 5, close 5"
    with page.expect_download() as download:
        page.click("#record-save")
    archive = tmp_path / "clips.npz"
    download.value.save_as(archive)
    dataset = load_dataset(str(archive))
    assert dataset.class_names == ("open", "close") and len(dataset) == 10
    np.testing.assert_array_equal(dataset.sequences[6], frames[7:37])
    assert dataset.skeleton.name == "mediapipe_hand"
    result = CliRunner().invoke(main, ["train", "--model", "attention_gcn", "--no-refit",
                                       "--dataset", str(archive), "--epochs", "1",
                                       "--frames", "16", "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
