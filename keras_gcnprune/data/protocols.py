"""Evaluation protocols as named splits of a dataset into train and test sequences."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from keras_gcnprune.data.dataset import SkeletonDataset
from keras_gcnprune.data.formats.ntu import NTU_XSUB_TRAIN_SUBJECTS, NTU_XVIEW_TRAIN_CAMERAS

SBU_SETS = (
    "s01s02", "s01s03", "s01s07", "s02s01", "s02s03", "s02s06", "s02s07", "s03s02", "s03s04",
    "s03s05", "s03s06", "s04s02", "s04s03", "s04s06", "s05s02", "s05s03", "s06s02", "s06s03",
    "s06s04", "s07s01", "s07s03",
)
SBU_TEST_FOLDS = ((1, 9, 15, 19), (5, 7, 10, 16), (2, 3, 20, 21), (4, 6, 8, 11),
                  (12, 13, 14, 17, 18))

Splitter = Callable[[SkeletonDataset], tuple[np.ndarray, np.ndarray]]


def _meta(dataset: SkeletonDataset, key: str) -> np.ndarray:
    if key not in dataset.meta:
        raise ValueError(
            f"Dataset {dataset.name!r} has no meta[{key!r}] needed by this protocol; it has "
            f"{sorted(dataset.meta)}."
        )
    return dataset.meta[key]


# A sequence's partition in a dataset's meta: "unused" leaves it out on purpose.
PARTITIONS = ("train", "test", "unused")


def _partition(key: str) -> Splitter:
    def splitter(dataset: SkeletonDataset) -> tuple[np.ndarray, np.ndarray]:
        values = np.asarray(_meta(dataset, key)).astype(str)
        other = sorted(set(values.tolist()) - set(PARTITIONS))
        if other:
            raise ValueError(
                f"meta[{key!r}] of dataset {dataset.name!r} holds {other[:5]}; each sequence's "
                f"partition must be exactly one of {PARTITIONS} (lower case), so that none is "
                "silently left out.")
        return values == "train", values == "test"

    return splitter


def _complement(train_mask: Callable[[SkeletonDataset], np.ndarray]) -> Splitter:
    def splitter(dataset: SkeletonDataset) -> tuple[np.ndarray, np.ndarray]:
        train = np.asarray(train_mask(dataset), dtype=bool)
        return train, ~train

    return splitter


def _sbu_fold(fold: int) -> Splitter:
    test_sets = [SBU_SETS[i - 1] for i in SBU_TEST_FOLDS[fold - 1]]
    return _complement(lambda dataset: ~np.isin(_meta(dataset, "group"), test_sets))


PROTOCOLS: dict[str, dict[str, Splitter]] = {
    "sbu": {f"fold{k}": _sbu_fold(k) for k in range(1, 6)},
    "fpha": {"official": _partition("partition")},
    "msr_action3d": {
        "cross_subject": _complement(lambda ds: _meta(ds, "group").astype(int) % 2 == 1)
    },
    "jhmdb": {f"split{k}": _partition(f"partition_split{k}") for k in (1, 2, 3)},
    "ntu": {
        "xsub": _complement(
            lambda ds: np.isin(_meta(ds, "group").astype(int), NTU_XSUB_TRAIN_SUBJECTS)
        ),
        "xview": _complement(
            lambda ds: np.isin(_meta(ds, "camera").astype(int), NTU_XVIEW_TRAIN_CAMERAS)
        ),
    },
    "synthetic": {"cross_subject": _partition("partition")},
    "mediapipe_gestures": {"mod5": _partition("partition")},
    "shrec21": {"validation": _partition("partition")},
    "npz": {"given": _partition("partition")},
}


def protocol_names(dataset_name: str) -> tuple[str, ...]:
    """Returns the protocols of a dataset (its `name`), default first."""
    return tuple(PROTOCOLS.get(dataset_name, PROTOCOLS["npz"]))


def split(dataset: SkeletonDataset, protocol: str | None = None
          ) -> tuple[SkeletonDataset, SkeletonDataset]:
    """Splits a dataset into (train, test) by a named protocol.

    Args:
        dataset: A loaded dataset; its `name` selects the protocols that apply.
        protocol: For example `"fold3"` (SBU), `"official"` (FPHA), `"cross_subject"` (MSR
            Action3D, synthetic), `"split2"` (JHMDB), `"xsub"` / `"xview"` (NTU), `"given"`
            (archives with `meta_partition`). Default: the dataset's first protocol.

    Returns:
        The training and the test subsets.

    Example:
        >>> train, test = split(load_sbu(root), "fold1")  # doctest: +SKIP
    """
    names = protocol_names(dataset.name)
    protocol = protocol or names[0]
    splitters = PROTOCOLS.get(dataset.name, PROTOCOLS["npz"])
    if protocol not in splitters:
        raise ValueError(
            f"Unknown protocol {protocol!r} for dataset {dataset.name!r}; choose one of {names}."
        )
    train, test = splitters[protocol](dataset)
    if not train.any() or not test.any():
        raise ValueError(
            f"Protocol {protocol!r} leaves {int(train.sum())} training and {int(test.sum())} test "
            f"sequences in dataset {dataset.name!r}; both must be non-empty."
        )
    return dataset.subset(train), dataset.subset(test)


def validation_split(train_set: SkeletonDataset, fraction: float, seed: int = 0
                     ) -> tuple[SkeletonDataset, SkeletonDataset]:
    """Carves a validation part out of a training split, for every choice a run makes (early
    stopping, checkpoints, tuned defaults), so that the test split is only ever reported.

    Where the sequences have groups (`meta["group"]`: subjects, SBU sets) whole groups go to
    validation, as the protocols keep subjects apart, shuffled with `seed` and added until they
    hold at least `fraction` of the sequences; otherwise `fraction` of every class, at random.

    Args:
        train_set: The training split of a protocol.
        fraction: Share of the sequences to hold out, in (0, 1).
        seed: Which groups or sequences are held out.

    Returns:
        `(fit, validation)`, disjoint and together `train_set`.

    Example:
        >>> train, test = split(load_dataset("synthetic"))  # doctest: +SKIP
        >>> fit, validation = validation_split(train, 0.1)  # doctest: +SKIP
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"The validation fraction must be in (0, 1), got {fraction}.")
    rng = np.random.default_rng(seed)
    groups = train_set.meta.get("group")
    if groups is not None and len(np.unique(groups)) > 1:
        held = _held_out_groups(groups, fraction, rng)
    else:
        held = _held_out_per_class(train_set.labels, fraction, rng)
    if held.all() or not held.any():
        raise ValueError(f"A validation fraction of {fraction} of {len(train_set)} training "
                         "sequences leaves one part empty; change the fraction.")
    return train_set.subset(~held), train_set.subset(held)


def _held_out_groups(groups: np.ndarray, fraction: float, rng: np.random.Generator
                     ) -> np.ndarray:
    names = rng.permutation(np.unique(groups))
    held = np.zeros(len(groups), dtype=bool)
    for name in names[:-1]:  # at least one group is left to fit on
        if held.mean() >= fraction:
            break
        held |= groups == name
    return held


def _held_out_per_class(labels: np.ndarray, fraction: float, rng: np.random.Generator
                        ) -> np.ndarray:
    held = np.zeros(len(labels), dtype=bool)
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        count = min(len(members) - 1, int(np.ceil(fraction * len(members))))
        held[members[:count]] = True
    return held
