"""Skeleton datasets: real-format readers, protocols, preprocessing, `tf.data` pipelines."""

from keras_gcnprune.data.dataset import SkeletonDataset, load_archive
from keras_gcnprune.data.errors import SkeletonFileError
from keras_gcnprune.data.formats.fpha import load_fpha
from keras_gcnprune.data.formats.jhmdb import load_jhmdb
from keras_gcnprune.data.formats.landmarks import load_landmark_folders
from keras_gcnprune.data.formats.msr import load_msr
from keras_gcnprune.data.formats.ntu import load_ntu
from keras_gcnprune.data.formats.sbu import load_sbu
from keras_gcnprune.data.pipeline import Augmentation, make_tf_dataset
from keras_gcnprune.data.preprocessing import STREAMS, Preprocessing
from keras_gcnprune.data.protocols import PROTOCOLS, protocol_names, split, validation_split
from keras_gcnprune.data.registry import (
    DATA_ENV,
    data_root,
    dataset_location,
    dataset_names,
    load_dataset,
)
from keras_gcnprune.data.synthetic import GESTURES, make_synthetic_gestures
from keras_gcnprune.data.windows import with_random_windows

__all__ = [
    "DATA_ENV",
    "GESTURES",
    "PROTOCOLS",
    "STREAMS",
    "Augmentation",
    "Preprocessing",
    "SkeletonDataset",
    "SkeletonFileError",
    "data_root",
    "dataset_location",
    "dataset_names",
    "load_archive",
    "load_dataset",
    "load_fpha",
    "load_jhmdb",
    "load_landmark_folders",
    "load_msr",
    "load_ntu",
    "load_sbu",
    "make_synthetic_gestures",
    "make_tf_dataset",
    "protocol_names",
    "split",
    "validation_split",
    "with_random_windows",
]
