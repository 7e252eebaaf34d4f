"""Skeleton layouts as data: joint names, bones (edges) and a centre joint.

A layout is a plain value; adjacency strategies (`keras_gcnprune.graphs.adjacency`) are functions
of it. Built-in layouts are looked up by name with `get_layout`; a custom one is a dict (or a JSON
file holding the same dict) away.
"""

from __future__ import annotations

import json
import re
import warnings
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Beyond any skeleton dataset (NTU RGB+D: 2 persons); bounds what a name read from a file can
# make this allocate (`jhmdb_x100000000`).
MAX_PERSONS = 16


# The most joints a layout may have: adjacencies hold joints squared values, per subset.
MAX_JOINTS = 1024


@dataclass(frozen=True)
class SkeletonLayout:
    """A skeleton graph: named joints, undirected bones between them and a centre joint.

    Args:
        name: Identifier of the layout (used in saved models and archives).
        joints: Joint names, in the order of the joint axis of the data.
        edges: Bones as pairs of 0-based joint indices.
        centre: Index of the joint that data are centred on and that the spatial partition
            measures distances from.
        persons: Number of persons whose joints follow one another in `joints` (equal
            blocks); `repeat` sets it.

    Example:
        >>> hand = SkeletonLayout("pinch", ("wrist", "thumb", "index"), ((0, 1), (0, 2)), 0)
        >>> hand.num_joints
        3
    """

    name: str
    joints: tuple[str, ...]
    edges: tuple[tuple[int, int], ...]
    centre: int = 0
    persons: int = 1

    def __post_init__(self) -> None:
        count = len(self.joints)
        if count == 0:
            raise ValueError(f"Layout {self.name!r} has no joints; give at least one joint name.")
        if count > MAX_JOINTS:
            raise ValueError(f"Layout {self.name!r} has {count:,} joints; at most {MAX_JOINTS:,} "
                             "are supported (its adjacency matrices grow with their square).")
        if len(set(self.joints)) != count:
            raise ValueError(f"Layout {self.name!r} has repeated joint names: {list(self.joints)}.")
        for edge in self.edges:
            i, j = edge
            if not (0 <= i < count and 0 <= j < count) or i == j:
                raise ValueError(
                    f"Layout {self.name!r} has edge {edge} that is not a pair of distinct joint "
                    f"indices in [0, {count}); edges use 0-based indices."
                )
        if not 0 <= self.centre < count:
            raise ValueError(
                f"Layout {self.name!r} has centre {self.centre} outside [0, {count})."
            )
        if self.persons < 1 or count % self.persons:
            raise ValueError(
                f"Layout {self.name!r} has persons={self.persons}, which must be at least 1 and "
                f"divide its {count} joints into equal blocks."
            )
        self._check_connected()

    def _check_connected(self) -> None:
        parts = self.components()
        if len(parts) == 1:
            return
        listed = "; ".join(
            "{" + ", ".join(self.joints[j] for j in part[:4]) + (", ..." if len(part) > 4 else "")
            + "}" for part in parts[:4])
        message = (f"Layout {self.name!r} is not connected: {len(parts)} components ({listed}"
                   f"{'; ...' if len(parts) > 4 else ''}).")
        if self.persons == 1:
            raise ValueError(message + " Graph convolutions need every joint linked to the "
                                       "others by bones: add the missing edges.")
        warnings.warn(message + " Persons are not linked; link their centres (as "
                                "SkeletonLayout.repeat does) for information to flow between "
                                "them.", stacklevel=3)

    def components(self) -> list[list[int]]:
        """The connected components of the bone graph, as sorted joint indices."""
        parent = list(range(self.num_joints))

        def root(joint: int) -> int:
            while parent[joint] != joint:
                parent[joint] = parent[parent[joint]]
                joint = parent[joint]
            return joint

        for i, j in self.edges:
            parent[root(i)] = root(j)
        parts: dict[int, list[int]] = {}
        for joint in range(self.num_joints):
            parts.setdefault(root(joint), []).append(joint)
        return sorted(parts.values())

    @property
    def num_joints(self) -> int:
        return len(self.joints)

    @property
    def num_edges(self) -> int:
        return len(self.edges)

    def adjacency(self) -> np.ndarray:
        """Returns the symmetric 0/1 joint adjacency matrix (no self-loops), shape (V, V)."""
        matrix = np.zeros((self.num_joints, self.num_joints), dtype=np.float32)
        for i, j in self.edges:
            matrix[i, j] = matrix[j, i] = 1.0
        return matrix

    def hop_distances(self, source: int | None = None) -> np.ndarray:
        """Returns the number of bones between `source` (default: the centre) and every joint.

        Joints that cannot be reached get -1.
        """
        source = self.centre if source is None else source
        neighbours = [[] for _ in range(self.num_joints)]
        for i, j in self.edges:
            neighbours[i].append(j)
            neighbours[j].append(i)
        distances = np.full(self.num_joints, -1, dtype=np.int64)
        distances[source] = 0
        queue = deque([source])
        while queue:
            joint = queue.popleft()
            for other in neighbours[joint]:
                if distances[other] < 0:
                    distances[other] = distances[joint] + 1
                    queue.append(other)
        return distances

    def is_connected(self) -> bool:
        return bool(np.all(self.hop_distances() >= 0))

    def parents(self) -> np.ndarray:
        """Returns, for each joint, its neighbour one hop closer to the centre (centre: itself).

        Used for bone streams (joint minus parent). On graphs with cycles the lowest-index
        neighbour among the closer ones is taken.
        """
        distances = self.hop_distances()
        parents = np.arange(self.num_joints)
        for i, j in sorted(self.edges):
            if distances[i] == distances[j] + 1 and parents[i] == i:
                parents[i] = j
            elif distances[j] == distances[i] + 1 and parents[j] == j:
                parents[j] = i
        return parents

    def repeat(self, persons: int, name: str | None = None) -> SkeletonLayout:
        """Returns a layout of `persons` copies of this one, centres linked to the first's.

        Interaction data (two people) use it as one graph of `persons * V` joints; the links
        between centres keep the graph connected.
        """
        if not 1 <= persons <= MAX_PERSONS:
            raise ValueError(f"persons must be in [1, {MAX_PERSONS}], got {persons} (layout "
                             f"{self.name!r}).")
        count = self.num_joints
        joints = tuple(
            f"p{p + 1}_{joint}" if persons > 1 else joint
            for p in range(persons)
            for joint in self.joints
        )
        edges = [(i + p * count, j + p * count) for p in range(persons) for i, j in self.edges]
        edges += [(self.centre, self.centre + p * count) for p in range(1, persons)]
        return SkeletonLayout(
            name or f"{self.name}_x{persons}", joints, tuple(edges), self.centre,
            self.persons * persons,
        )

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "joints": list(self.joints),
            "edges": [list(edge) for edge in self.edges],
            "centre": self.centre,
            "persons": self.persons,
        }

    @classmethod
    def from_dict(cls, spec: dict) -> SkeletonLayout:
        """Builds a layout from `{"name", "joints", "edges", "centre", "persons"}` (the last two
        optional)."""
        missing = {"name", "joints", "edges"} - set(spec)
        if missing:
            raise ValueError(
                f"Layout dict is missing {sorted(missing)}; expected keys name, joints, edges "
                f"and optionally centre and persons, got {sorted(spec)}."
            )
        return cls(
            name=str(spec["name"]),
            joints=tuple(str(joint) for joint in spec["joints"]),
            edges=tuple((int(i), int(j)) for i, j in spec["edges"]),
            centre=int(spec.get("centre", 0)),
            persons=int(spec.get("persons", 1)),
        )

    @classmethod
    def from_json(cls, path: str | Path) -> SkeletonLayout:
        """Reads a layout dict (see `from_dict`) from a JSON file."""
        path = Path(path)
        try:
            spec = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise ValueError(f"Cannot read layout JSON {path}: {error}") from error
        return cls.from_dict(spec)


def _one_based(edges: list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    return tuple((i - 1, j - 1) for i, j in edges)


NTU_RGBD = SkeletonLayout(
    "ntu_rgbd",
    (
        "spine_base", "spine_mid", "neck", "head", "shoulder_left", "elbow_left", "wrist_left",
        "hand_left", "shoulder_right", "elbow_right", "wrist_right", "hand_right", "hip_left",
        "knee_left", "ankle_left", "foot_left", "hip_right", "knee_right", "ankle_right",
        "foot_right", "spine_shoulder", "hand_tip_left", "thumb_left", "hand_tip_right",
        "thumb_right",
    ),
    _one_based([
        (1, 2), (2, 21), (3, 21), (4, 3), (5, 21), (6, 5), (7, 6), (8, 7), (9, 21), (10, 9),
        (11, 10), (12, 11), (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18),
        (20, 19), (22, 23), (23, 8), (24, 25), (25, 12),
    ]),
    centre=20,
)

KINECT_V1 = SkeletonLayout(
    "kinect_v1",
    (
        "hip_center", "spine", "shoulder_center", "head", "shoulder_left", "elbow_left",
        "wrist_left", "hand_left", "shoulder_right", "elbow_right", "wrist_right", "hand_right",
        "hip_left", "knee_left", "ankle_left", "foot_left", "hip_right", "knee_right",
        "ankle_right", "foot_right",
    ),
    (
        (0, 1), (1, 2), (2, 3), (2, 4), (4, 5), (5, 6), (6, 7), (2, 8), (8, 9), (9, 10),
        (10, 11), (0, 12), (12, 13), (13, 14), (14, 15), (0, 16), (16, 17), (17, 18), (18, 19),
    ),
    centre=1,
)

MSR_ACTION3D = SkeletonLayout(
    "msr_action3d",
    (
        "shoulder_left", "shoulder_right", "neck", "spine", "hip_left", "hip_right",
        "hip_center", "elbow_left", "elbow_right", "wrist_left", "wrist_right", "hand_left",
        "hand_right", "knee_left", "knee_right", "ankle_left", "ankle_right", "foot_left",
        "foot_right", "head",
    ),
    _one_based([
        (20, 3), (3, 1), (3, 2), (3, 4), (4, 7), (7, 5), (7, 6), (1, 8), (2, 9), (8, 10),
        (9, 11), (10, 12), (11, 13), (5, 14), (6, 15), (14, 16), (15, 17), (16, 18), (17, 19),
    ]),
    centre=3,
)

SBU = SkeletonLayout(
    "sbu",
    (
        "head", "neck", "torso", "shoulder_left", "elbow_left", "hand_left", "shoulder_right",
        "elbow_right", "hand_right", "hip_left", "knee_left", "foot_left", "hip_right",
        "knee_right", "foot_right",
    ),
    (
        (0, 1), (1, 2), (1, 3), (3, 4), (4, 5), (1, 6), (6, 7), (7, 8), (2, 9), (9, 10),
        (10, 11), (2, 12), (12, 13), (13, 14),
    ),
    centre=2,
)

SBU_PAIR = SBU.repeat(2, name="sbu_pair")

JHMDB = SkeletonLayout(
    "jhmdb",
    (
        "neck", "belly", "face", "shoulder_right", "shoulder_left", "hip_right", "hip_left",
        "elbow_right", "elbow_left", "knee_right", "knee_left", "wrist_right", "wrist_left",
        "ankle_right", "ankle_left",
    ),
    (
        (0, 1), (0, 2), (0, 3), (0, 4), (1, 5), (1, 6), (3, 7), (4, 8), (5, 9), (6, 10),
        (7, 11), (8, 12), (9, 13), (10, 14),
    ),
    centre=1,
)

COCO = SkeletonLayout(
    "coco",
    (
        "nose", "eye_left", "eye_right", "ear_left", "ear_right", "shoulder_left",
        "shoulder_right", "elbow_left", "elbow_right", "wrist_left", "wrist_right", "hip_left",
        "hip_right", "knee_left", "knee_right", "ankle_left", "ankle_right",
    ),
    (
        (15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7),
        (6, 8), (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6),
    ),
    centre=0,
)

OPENPOSE = SkeletonLayout(
    "openpose",
    (
        "nose", "neck", "shoulder_right", "elbow_right", "wrist_right", "shoulder_left",
        "elbow_left", "wrist_left", "hip_right", "knee_right", "ankle_right", "hip_left",
        "knee_left", "ankle_left", "eye_right", "eye_left", "ear_right", "ear_left",
    ),
    (
        (4, 3), (3, 2), (7, 6), (6, 5), (13, 12), (12, 11), (10, 9), (9, 8), (11, 5), (8, 2),
        (5, 1), (2, 1), (0, 1), (15, 0), (14, 0), (17, 15), (16, 14),
    ),
    centre=1,
)

_FINGERS = ("thumb", "index", "middle", "ring", "pinky")

MEDIAPIPE_HAND = SkeletonLayout(
    "mediapipe_hand",
    ("wrist", "thumb_cmc", "thumb_mcp", "thumb_ip", "thumb_tip")
    + tuple(f"{finger}_{part}" for finger in _FINGERS[1:] for part in ("mcp", "pip", "dip", "tip")),
    (
        (0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (5, 6), (6, 7), (7, 8), (5, 9), (9, 10),
        (10, 11), (11, 12), (9, 13), (13, 14), (14, 15), (15, 16), (13, 17), (0, 17), (17, 18),
        (18, 19), (19, 20),
    ),
    centre=0,
)

SHREC_HAND = SkeletonLayout(
    "shrec_hand",
    ("wrist", "palm")
    + tuple(
        f"{finger}_{part}"
        for finger in _FINGERS
        for part in ("base", "first", "second", "tip")
    ),
    (
        (0, 1), (0, 2), (2, 3), (3, 4), (4, 5), (1, 6), (6, 7), (7, 8), (8, 9), (1, 10),
        (10, 11), (11, 12), (12, 13), (1, 14), (14, 15), (15, 16), (16, 17), (1, 18), (18, 19),
        (19, 20), (20, 21),
    ),
    centre=1,
)

# SHREC'21's Leap Motion hand: the palm, the thumb's base, middle and tip, then each other
# finger's base, two middle joints and tip.
SHREC21_HAND = SkeletonLayout(
    "shrec21_hand",
    ("palm", "thumb_base", "thumb_middle", "thumb_tip")
    + tuple(f"{finger}_{part}" for finger in _FINGERS[1:]
            for part in ("base", "first", "second", "tip")),
    (
        (0, 1), (1, 2), (2, 3), (0, 4), (4, 5), (5, 6), (6, 7), (0, 8), (8, 9), (9, 10),
        (10, 11), (0, 12), (12, 13), (13, 14), (14, 15), (0, 16), (16, 17), (17, 18), (18, 19),
    ),
    centre=0,
)

BUILTIN_LAYOUTS: dict[str, SkeletonLayout] = {
    layout.name: layout
    for layout in (
        NTU_RGBD, KINECT_V1, MSR_ACTION3D, SBU, SBU_PAIR, JHMDB, COCO, OPENPOSE,
        MEDIAPIPE_HAND, SHREC_HAND, SHREC21_HAND,
    )
}
_ALIASES = {
    "ntu": "ntu_rgbd", "nw_ucla": "kinect_v1", "utkinect": "kinect_v1", "msr": "msr_action3d",
    "fpha": "mediapipe_hand", "mediapipe": "mediapipe_hand", "dhg": "shrec_hand",
    "shrec": "shrec_hand", "shrec21": "shrec21_hand",
}


def get_layout(spec: str | dict | SkeletonLayout) -> SkeletonLayout:
    """Returns a layout from a built-in name, an alias, a dict, a JSON file path or a layout.

    Args:
        spec: A name listed by `gcnprune layouts` (for example `"ntu_rgbd"`, `"sbu_pair"`,
            `"mediapipe_hand"`), such a name with `_x<N>` for N persons in one graph
            (`"ntu_rgbd_x2"`, see `SkeletonLayout.repeat`), an alias (`"ntu"`, `"fpha"`,
            `"nw_ucla"`, ...), a dict accepted by `SkeletonLayout.from_dict`, or a path to a
            `.json` file holding such a dict.

    Returns:
        The `SkeletonLayout`.

    Example:
        >>> get_layout("fpha").num_joints
        21
    """
    if isinstance(spec, SkeletonLayout):
        return spec
    if isinstance(spec, dict):
        return SkeletonLayout.from_dict(spec)
    key = str(spec)
    name = _ALIASES.get(key.lower(), key.lower())
    if name in BUILTIN_LAYOUTS:
        return BUILTIN_LAYOUTS[name]
    repeated = re.fullmatch(r"(.+)_x(\d+)", name)
    if repeated:
        return get_layout(repeated.group(1)).repeat(int(repeated.group(2)), name=name)
    if key.endswith(".json"):
        return SkeletonLayout.from_json(key)
    raise ValueError(
        f"Unknown skeleton layout {spec!r}. Built-in layouts: {sorted(BUILTIN_LAYOUTS)}; "
        f"aliases: {sorted(_ALIASES)}; or pass a dict or a path to a .json layout file."
    )
