"""Synthetic hand gestures on the MediaPipe hand layout: the built-in default dataset.

A kinematic hand (wrist, five fingers of three segments) is driven by per-gesture curves of
finger flexion, spread, thumb opposition, wrist translation and rotation. Nuisances make the task
non-trivial: left and right hands, per-subject bone lengths, resting-pose offsets, gesture
amplitude, wrist wobble, viewpoint rotation, distance, speed changes (time warping, onset and end
jitter), variable length, drift, sensor noise and tracker freezes. The split is by subject.
Deterministic by seed.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from keras_gcnprune.data.dataset import SkeletonDataset

GESTURES = (
    "grab", "release", "pinch", "double_tap", "swipe_left", "swipe_right", "swipe_up",
    "swipe_down", "rotate_cw", "rotate_ccw", "wave", "scissors", "count", "push",
)
# Finger order: thumb, index, middle, ring, pinky. Base of each chain in the palm frame
# (x right, y along the fingers, z out of the back of the hand) and segment lengths.
_BASES = np.array([[-0.35, 0.25, 0.0], [-0.3, 0.9, 0.0], [-0.1, 0.95, 0.0], [0.1, 0.9, 0.0],
                   [0.3, 0.8, 0.0]])
_SEGMENTS = np.array([[0.35, 0.3, 0.25], [0.4, 0.25, 0.2], [0.45, 0.3, 0.2], [0.42, 0.27, 0.2],
                      [0.33, 0.2, 0.18]])
_FLEX_RANGE = np.radians([[30.0, 50.0, 60.0], [80.0, 100.0, 70.0], [80.0, 100.0, 70.0],
                          [80.0, 100.0, 70.0], [80.0, 100.0, 70.0]])
_SPREAD = np.radians([-50.0, -8.0, 0.0, 8.0, 16.0])


def _smoothstep(t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _bump(t: np.ndarray, cycles: int = 1) -> np.ndarray:
    return np.sin(np.pi * cycles * np.clip(t, 0.0, 1.0)) ** 2


def _rotation(roll: float, pitch: float, yaw: float) -> np.ndarray:
    """Rotation about y (roll, along the fingers), then x (pitch), then z (yaw)."""
    cr, sr, cp, sp, cy, sy = (np.cos(roll), np.sin(roll), np.cos(pitch), np.sin(pitch),
                              np.cos(yaw), np.sin(yaw))
    ry = np.array([[cr, 0, sr], [0, 1, 0], [-sr, 0, cr]])
    rx = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    rz = np.array([[cy, -sy, 0], [sy, cy, 0], [0, 0, 1]])
    return rz @ rx @ ry


class _Motion:
    """Per-frame gesture parameters, all arrays over normalised time."""

    def __init__(self, t: np.ndarray) -> None:
        count = len(t)
        self.t = t
        self.curl = np.zeros((count, 5))
        self.spread = np.zeros(count)
        self.opposition = np.zeros(count)
        self.translation = np.zeros((count, 3))
        self.rotation = np.zeros((count, 3))


def _grab(m: _Motion) -> None:
    m.curl[:] = _smoothstep(m.t)[:, None]


def _release(m: _Motion) -> None:
    m.curl[:] = 1.0 - _smoothstep(m.t)[:, None]


def _pinch(m: _Motion) -> None:
    bump = _bump(m.t)
    m.curl[:, 1] = 0.55 * bump
    m.curl[:, 0] = 0.8 * bump
    m.opposition[:] = 0.8 * bump
    m.curl[:, 2:] = 0.1


def _double_tap(m: _Motion) -> None:
    m.curl[:, 2:] = 0.9
    m.curl[:, 0] = 0.6
    m.curl[:, 1] = 0.5 * _bump(m.t, cycles=2)


def _swipe(axis: int, sign: float) -> Callable[[_Motion], None]:
    def gesture(m: _Motion) -> None:
        m.translation[:, axis] = sign * (1.6 * _smoothstep(m.t) - 0.8)

    return gesture


def _rotate(sign: float) -> Callable[[_Motion], None]:
    def gesture(m: _Motion) -> None:
        m.rotation[:, 0] = sign * np.radians(100.0) * _smoothstep(m.t)

    return gesture


def _wave(m: _Motion) -> None:
    m.rotation[:, 2] = np.radians(25.0) * np.sin(2 * np.pi * 2 * m.t)


def _scissors(m: _Motion) -> None:
    m.curl[:, 3:] = 0.9
    m.curl[:, 0] = 0.7
    m.spread[:] = np.radians(20.0) * _bump(m.t, cycles=2)


def _count(m: _Motion) -> None:
    m.curl[:] = 1.0
    for finger, start in zip(range(1, 5), (0.1, 0.3, 0.5, 0.7)):
        m.curl[:, finger] = 1.0 - _smoothstep((m.t - start) / 0.2)


def _push(m: _Motion) -> None:
    m.translation[:, 2] = -0.6 * _smoothstep(m.t)


_GESTURE_FUNCTIONS = (
    _grab, _release, _pinch, _double_tap, _swipe(0, -1.0), _swipe(0, 1.0), _swipe(1, 1.0),
    _swipe(1, -1.0), _rotate(1.0), _rotate(-1.0), _wave, _scissors, _count, _push,
)


def _hand_pose(segments: np.ndarray, curl: np.ndarray, spread: float, opposition: float
               ) -> np.ndarray:
    """Joint positions (21, 3) in the palm frame, MediaPipe order, for one frame."""
    joints = np.zeros((21, 3))
    for finger in range(5):
        base = _BASES[finger].copy()
        angle = _SPREAD[finger] + (spread if finger == 2 else -spread if finger == 1 else 0.0)
        if finger == 0:
            angle += np.radians(60.0) * opposition
        heading = np.array([np.sin(angle), np.cos(angle), 0.0])
        flex = 0.0
        position = base
        joints[1 + 4 * finger] = base
        for segment in range(3):
            flex += _FLEX_RANGE[finger, segment] * curl[finger]
            direction = np.array([heading[0] * np.cos(flex), heading[1] * np.cos(flex),
                                  -np.sin(flex)])
            position = position + segments[finger, segment] * direction
            joints[2 + 4 * finger + segment] = position
    return joints


def generate_gesture(gesture: int, rng: np.random.Generator, segments: np.ndarray,
                     noise: float = 0.08) -> np.ndarray:
    """Generates one sequence `(T, 21, 3)` of gesture index `gesture` for a subject's bones."""
    frames = int(rng.integers(24, 57))
    start, end = rng.uniform(0.0, 0.2), rng.uniform(0.8, 1.0)
    clock = np.linspace(0.0, 1.0, frames) ** rng.uniform(0.7, 1.4)
    motion = _Motion((clock - start) / (end - start))
    _GESTURE_FUNCTIONS[gesture](motion)
    amplitude = rng.uniform(0.3, 1.0)
    motion.translation *= amplitude
    motion.rotation *= amplitude
    motion.spread *= amplitude
    motion.curl = np.clip(motion.curl + rng.uniform(-0.15, 0.15, 5), 0.0, 1.0)
    wobble_phase = rng.uniform(0, 2 * np.pi, 3)
    wobble = np.radians(12.0) * np.sin(2 * np.pi * rng.uniform(0.5, 2.0) * clock[:, None]
                                       + wobble_phase)
    motion.rotation += wobble * rng.uniform(0.0, 1.0, 3)
    drift = np.cumsum(rng.normal(0.0, 0.015, (frames, 3)), axis=0)
    view = _rotation(*np.radians(rng.uniform([-30, -30, -60], [30, 30, 60])))
    distance = rng.uniform(0.8, 1.2)
    offset = rng.normal(0.0, 0.3, 3)
    handedness = np.array([rng.choice([-1.0, 1.0]), 1.0, 1.0])  # left hands mirror x
    sequence = np.empty((frames, 21, 3))
    for frame in range(frames):
        local = handedness * _hand_pose(segments, motion.curl[frame], motion.spread[frame],
                                        motion.opposition[frame])
        wrist_turn = _rotation(*motion.rotation[frame])
        world = local @ wrist_turn.T + motion.translation[frame] + drift[frame]
        sequence[frame] = (world @ view.T) * distance + offset
    sequence += rng.normal(0.0, noise, sequence.shape)
    frozen = np.flatnonzero(rng.random(frames) < 0.15)  # tracker repeats its last estimate
    for frame in frozen[frozen > 0]:
        sequence[frame] = sequence[frame - 1]
    return sequence.astype(np.float32)


def make_synthetic_gestures(
    subjects: int = 10,
    test_subjects: int = 3,
    repetitions: int = 6,
    noise: float = 0.08,
    seed: int = 0,
) -> SkeletonDataset:
    """Generates the synthetic hand-gesture dataset (14 classes, MediaPipe hand layout).

    Args:
        subjects: Number of subjects, each with its own bone lengths.
        test_subjects: The last `test_subjects` subjects form the test partition.
        repetitions: Sequences per subject and gesture.
        noise: Standard deviation of per-joint sensor noise (hand length is about 1.6).
        seed: Random seed; the same seed gives the same dataset.

    Returns:
        A `SkeletonDataset` named `"synthetic"` with `meta["partition"]` and `meta["group"]`
        (subject), split by `keras_gcnprune.data.split(dataset, "cross_subject")`.

    Example:
        >>> ds = make_synthetic_gestures(subjects=2, test_subjects=1, repetitions=1)
        >>> len(ds), ds.num_classes
        (28, 14)
    """
    if not 0 < test_subjects < subjects:
        raise ValueError(
            f"test_subjects must be in [1, subjects - 1], got {test_subjects} of {subjects}."
        )
    rng = np.random.default_rng(seed)
    sequences, labels, groups = [], [], []
    for subject in range(subjects):
        segments = _SEGMENTS * rng.uniform(0.85, 1.15) * rng.uniform(0.9, 1.1, (5, 1))
        for gesture in range(len(GESTURES)):
            for _ in range(repetitions):
                sequences.append(generate_gesture(gesture, rng, segments, noise))
                labels.append(gesture)
                groups.append(subject)
    groups = np.array(groups)
    partition = np.where(groups >= subjects - test_subjects, "test", "train")
    return SkeletonDataset(
        sequences, np.array(labels), GESTURES, "mediapipe_hand", "synthetic",
        {"group": groups, "partition": partition},
    )
