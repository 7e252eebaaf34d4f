"""Installing the app's JavaScript packages, and serving the page, them and one model."""

from __future__ import annotations

import http.server
import os
import shutil
import subprocess
from pathlib import Path
from urllib.parse import unquote, urlparse

from keras_gcnprune import __version__
from keras_gcnprune.export.flatbuffer import read_metadata
from keras_gcnprune.outputs import OutputFolder

WEB_DIR = Path(__file__).parent / "web"
LOCKED = ("package.json", "package-lock.json")
APP_HOME_ENV = "GCNPRUNE_APP_HOME"
CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript",
                 ".css": "text/css", ".json": "application/json", ".wasm": "application/wasm",
                 ".tflite": "application/octet-stream", ".data": "application/octet-stream",
                 ".binarypb": "application/octet-stream"}


def app_home() -> Path:
    """Where `install_app` puts the JavaScript packages: `$GCNPRUNE_APP_HOME`, else a folder of
    this version under the user's cache (`~/.cache/keras-gcnprune/app-<version>`)."""
    configured = os.environ.get(APP_HOME_ENV)
    if configured:
        return Path(configured)
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return cache / "keras-gcnprune" / f"app-{__version__}"


def install_app(home: str | Path | None = None) -> Path:
    """Installs the app's JavaScript packages with `npm ci` from the lock file shipped with the
    package (the npm registry only; no install scripts run).

    Args:
        home: The folder to install into (default: `app_home()`).

    Returns:
        The `node_modules` folder.

    Raises:
        FileNotFoundError: npm is not installed (the message says what to install).
        OutputConflictError: `home` holds a `node_modules` or lock file the package did not
            write there.
        RuntimeError: npm failed (its last output lines are in the message).

    Example:
        >>> install_app()  # doctest: +SKIP
    """
    npm = shutil.which("npm")
    if npm is None:
        raise FileNotFoundError(
            "The app's JavaScript packages are installed with npm, which is not on this "
            "machine: install Node.js 20 or newer with npm (https://nodejs.org, or "
            "`apt-get install nodejs npm`), then run `gcnprune app --install` again.")
    out = OutputFolder(home or app_home())
    with out.locked():
        out.check_writable(["node_modules", *LOCKED])
        for name in LOCKED:
            out.write_bytes(name, (WEB_DIR / name).read_bytes())
        out.claim("node_modules")
        done = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
                              cwd=out.path, capture_output=True, text=True)
        if done.returncode:
            tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-5:])
            raise RuntimeError(f"npm ci in {out.path} failed (exit {done.returncode}): {tail}")
    return out.path / "node_modules"


def missing_install(home: str | Path | None = None) -> str | None:
    """Why the app cannot be served from `home` (None when it can)."""
    modules = Path(home or app_home()) / "node_modules"
    for package in ("@litertjs/core", "@mediapipe/hands"):
        if not (modules / package / "package.json").is_file():
            return (f"the app's JavaScript packages are not installed ({package} is not in "
                    f"{modules}): run `gcnprune app --install` (needs Node.js and npm).")
    return None


def check_app_model(path: str | Path) -> dict:
    """The package's metadata of a model the app can run, refusing one it cannot.

    Raises:
        ValueError: the file is not a TFLite model, carries no package metadata, takes
            preprocessed inputs, or has no label per output.
    """
    metadata = read_metadata(path)
    if not metadata.get("raw_input"):
        raise ValueError(f"{path} takes preprocessed inputs; the app feeds landmarks as the "
                         "sensor gives them: export a raw-input model with `gcnprune export RUN "
                         "--tflite FILE --raw-input --probabilities`.")
    if len(metadata.get("labels") or []) != metadata["output"]["shape"][-1]:
        raise ValueError(f"{path}'s metadata has no label for each of its outputs; export it "
                         "again from its run directory.")
    return metadata


def make_server(model: str | Path | None, host: str = "127.0.0.1", port: int = 8000,
                home: str | Path | None = None) -> http.server.ThreadingHTTPServer:
    """An HTTP server of the page (`/`), the installed packages (`/vendor/`) and the model
    (`/model.tflite`); call `serve_forever()` on it.

    Raises:
        FileNotFoundError: the packages are not installed (see `missing_install`).
        ValueError: the model is one the app cannot run (see `check_app_model`).
    """
    home = Path(home or app_home())
    missing = missing_install(home)
    if missing:
        raise FileNotFoundError(missing)
    if model is not None:
        check_app_model(model)
    routes = {"/vendor/": home / "node_modules", "/": WEB_DIR}
    files = {"/model.tflite": Path(model)} if model is not None else {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
            path = unquote(urlparse(self.path).path)
            target = files.get(path) or _routed(routes, "/index.html" if path == "/" else path)
            if target is None or not target.is_file():
                self.send_error(404)
                return
            data = target.read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPES.get(target.suffix,
                                                               "application/octet-stream"))
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args) -> None:
            pass  # the command prints the address; requests are not news

    return http.server.ThreadingHTTPServer((host, port), Handler)


def _routed(routes: dict[str, Path], path: str) -> Path | None:
    """The file a URL path names under the first route it starts with, never outside it."""
    for prefix, root in routes.items():
        if path.startswith(prefix):
            target = (root / path[len(prefix):]).resolve()
            return target if target.is_relative_to(root.resolve()) else None
    return None
