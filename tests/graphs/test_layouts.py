import json

import numpy as np
import pytest

from keras_gcnprune.graphs import BUILTIN_LAYOUTS, SkeletonLayout, get_layout

DOCUMENTED = {
    "ntu_rgbd": (25, 24),
    "kinect_v1": (20, 19),
    "msr_action3d": (20, 19),
    "sbu": (15, 14),
    "sbu_pair": (30, 29),
    "jhmdb": (15, 14),
    "coco": (17, 19),
    "openpose": (18, 17),
    "mediapipe_hand": (21, 21),
    "shrec_hand": (22, 21),
    "shrec21_hand": (20, 19),
}


def test_every_builtin_layout_is_documented():
    assert set(BUILTIN_LAYOUTS) == set(DOCUMENTED)


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_builtin_layout_counts_and_connectivity(name):
    layout = get_layout(name)
    assert (layout.num_joints, layout.num_edges) == DOCUMENTED[name]
    assert layout.is_connected()
    assert len({tuple(sorted(edge)) for edge in layout.edges}) == layout.num_edges
    adjacency = layout.adjacency()
    np.testing.assert_array_equal(adjacency, adjacency.T)
    assert adjacency.sum() == 2 * layout.num_edges


def test_shrec21_edges_join_the_palm_to_each_finger_base_then_run_along_each_finger():
    layout = get_layout("shrec21")
    bases = {name: i for i, name in enumerate(layout.joints) if name.endswith("_base")}
    assert sorted(bases.values()) == [1, 4, 8, 12, 16]
    fingers = [[1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11], [12, 13, 14, 15], [16, 17, 18, 19]]
    expected = {(0, f[0]) for f in fingers} | {(a, b) for f in fingers for a, b in zip(f, f[1:])}
    assert set(layout.edges) == expected and layout.centre == 0


def test_msr_edges_follow_the_data_readme_one_based_list():
    layout = get_layout("msr_action3d")
    assert layout.joints[19] == "head" and layout.joints[2] == "neck"
    assert (19, 2) in layout.edges  # (20, 3) one-based: head - neck


def test_parents_point_one_hop_towards_the_centre():
    layout = get_layout("sbu")
    distances = layout.hop_distances()
    parents = layout.parents()
    assert parents[layout.centre] == layout.centre
    for joint, parent in enumerate(parents):
        if joint != layout.centre:
            assert distances[parent] == distances[joint] - 1


def test_repeat_links_person_centres():
    pair = get_layout("ntu_rgbd_x2")
    assert pair.num_joints == 50 and pair.num_edges == 49 and pair.is_connected()
    assert (20, 45) in pair.edges
    assert pair.joints[25] == "p2_spine_base"
    assert pair.persons == 2 and get_layout("sbu_pair").persons == 2
    assert get_layout("ntu_rgbd").persons == 1


def test_aliases_resolve():
    assert get_layout("fpha") is get_layout("mediapipe_hand")
    assert get_layout("NTU").name == "ntu_rgbd"


def test_custom_layout_from_dict_and_json(tmp_path):
    spec = {"name": "arm", "joints": ["shoulder", "elbow", "wrist"], "edges": [[0, 1], [1, 2]],
            "centre": 0}
    layout = get_layout(spec)
    assert layout == SkeletonLayout("arm", ("shoulder", "elbow", "wrist"), ((0, 1), (1, 2)), 0)
    path = tmp_path / "arm.json"
    path.write_text(json.dumps(spec))
    assert get_layout(str(path)) == layout
    assert SkeletonLayout.from_dict(layout.to_dict()) == layout
    assert SkeletonLayout.from_dict(layout.repeat(2).to_dict()).persons == 2


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"name": "x", "joints": ["a", "b"], "edges": [[0, 2]]}, "edge"),
        ({"name": "x", "joints": ["a", "a"], "edges": []}, "repeated"),
        ({"name": "x", "joints": ["a"], "edges": [], "centre": 3}, "centre"),
        ({"joints": ["a"], "edges": []}, "missing"),
        ({"name": "x", "joints": ["a", "b", "c"], "edges": [], "persons": 2}, "persons"),
    ],
)
def test_bad_custom_layouts_are_refused(spec, message):
    with pytest.raises(ValueError, match=message):
        get_layout(spec)


def test_unknown_layout_names_the_choices():
    with pytest.raises(ValueError, match="Built-in layouts"):
        get_layout("octopus")


def test_disconnected_layouts_are_refused_naming_the_components():
    with pytest.raises(ValueError, match=r"'split' is not connected: 2 components \(\{a, b\}; "
                                         r"\{c, d\}\)"):
        SkeletonLayout.from_dict({"name": "split", "joints": ["a", "b", "c", "d"],
                                  "edges": [[0, 1], [2, 3]]})
    with pytest.raises(ValueError, match="'bare' is not connected"):
        SkeletonLayout("bare", ("a", "b"), ())
    assert SkeletonLayout("dot", ("a",), ()).components() == [[0]]


def test_unlinked_persons_warn_naming_the_components():
    with pytest.warns(UserWarning, match=r"'two' is not connected: 2 components"):
        layout = SkeletonLayout("two", ("a1", "b1", "a2", "b2"), ((0, 1), (2, 3)), persons=2)
    assert layout.components() == [[0, 1], [2, 3]]


def test_person_count_is_bounded_before_anything_is_allocated():
    with pytest.raises(ValueError, match=r"persons must be in \[1, 16\], got 100000000"):
        get_layout("jhmdb_x100000000")
    assert get_layout("jhmdb_x16").num_joints == 16 * 15
