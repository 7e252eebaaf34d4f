"""The web app: an exported raw-input model running in the browser on LiteRT.js (WebGPU, or
wasm, said so), fed by the camera or a video through MediaPipe hand landmarks or by a recorded
landmark stream, with a record mode that saves labelled clips as the package's archive.

`gcnprune app --install` installs its JavaScript packages from the npm registry, pinned by its
lock file; `gcnprune app MODEL.tflite` serves it with the model. Nothing is fetched at run time.
"""

from keras_gcnprune.app.server import (
    WEB_DIR,
    app_home,
    check_app_model,
    install_app,
    make_server,
    missing_install,
)

__all__ = ["WEB_DIR", "app_home", "check_app_model", "install_app", "make_server",
           "missing_install"]
