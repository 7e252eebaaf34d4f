"""Train a skeleton model on your own joints: a custom layout from a dict and a numpy archive.

Run: python examples/custom_layout.py
"""

import keras
import numpy as np

from keras_gcnprune.data import Preprocessing, load_archive, make_tf_dataset, split
from keras_gcnprune.graphs import build_adjacency, get_layout
from keras_gcnprune.models import build

ARM = {
    "name": "arm",
    "joints": ["shoulder", "elbow", "wrist", "hand"],
    "edges": [[0, 1], [1, 2], [2, 3]],
    "centre": 0,
}


def make_archive(path: str, rng: np.random.Generator) -> None:
    """Writes two gestures of a 4-joint arm (raise vs. swing) in the package's npz format."""
    lengths = rng.integers(20, 40, size=60)
    poses, labels = [], []
    for index, length in enumerate(lengths):
        label = index % 2
        t = np.linspace(0, 1, length)[:, None]
        angle = np.pi / 2 * t if label == 0 else 0.6 * np.sin(4 * np.pi * t)
        reach = np.cumsum(np.ones((length, 4)) * 0.3, axis=1) - 0.3
        arm = np.stack([reach * np.cos(angle), reach * np.sin(angle), np.zeros_like(reach)], -1)
        poses.append(arm + rng.normal(0, 0.02, arm.shape))
        labels.append(["raise", "swing"][label])
    np.savez(
        path,
        poses=np.concatenate(poses).astype("float32"),
        lengths=lengths.astype("int32"),
        labels=np.array(labels),
        meta_partition=np.where(np.arange(60) < 45, "train", "test"),
    )


def main() -> None:
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    make_archive("/tmp/arm_gestures.npz", rng)
    layout = get_layout(ARM)
    print("adjacency subsets:", build_adjacency(layout, "spatial").shape)

    dataset = load_archive("/tmp/arm_gestures.npz", layout=layout)
    train_set, test_set = split(dataset, "given")
    prep = Preprocessing(frames=16)
    x_train, y_train = prep.arrays(train_set)
    x_test, y_test = prep.arrays(test_set)

    model = build("stgcn", layout, num_classes=2, frames=16, widths=(8, 16), strides=(1, 2))
    model.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(make_tf_dataset(x_train, y_train, 8, training=True), epochs=30, verbose=0)
    _, accuracy = model.evaluate(make_tf_dataset(x_test, y_test), verbose=0)
    print(f"test accuracy on {len(x_test)} held-out arms: {accuracy:.2%}")


if __name__ == "__main__":
    main()
