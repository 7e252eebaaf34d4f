"""Several trained models as one: each sees its own streams of a shared input, and their
logits are averaged (the multi-stream ensembles of 2s-AGCN and its successors)."""

from __future__ import annotations

from collections.abc import Sequence

import keras

from keras_gcnprune.layers import SelectStreams
from keras_gcnprune.layers.skeleton_preprocessing import STREAMS


def union_of_streams(member_streams: Sequence[Sequence[str]]) -> tuple[str, ...]:
    """Every stream some member takes, in the package's order (joint, bone, motion)."""
    wanted = {s for streams in member_streams for s in streams}
    return tuple(s for s in STREAMS if s in wanted)


def _check_members(members: Sequence[keras.Model], member_streams: Sequence[Sequence[str]]
                   ) -> int:
    """The raw channels per stream the members share; raises when their inputs or classes
    differ or a member's channels do not fit its streams."""
    if len(members) < 2 or len(members) != len(member_streams):
        raise ValueError(f"An ensemble needs at least 2 members and one stream list for each; "
                         f"got {len(members)} members and {len(member_streams)} stream lists.")
    first = members[0]
    raw = first.input_shape[-1] // len(member_streams[0])
    for member, streams in zip(members, member_streams):
        frames, joints, channels = member.input_shape[1:]
        problems = [f"{what} {mine} against {theirs} for {first.name!r}"
                    for what, mine, theirs in (
                        ("frames", frames, first.input_shape[1]),
                        ("joints", joints, first.input_shape[2]),
                        ("classes", member.output_shape[-1], first.output_shape[-1]))
                    if mine != theirs]
        if channels != raw * len(streams):
            problems.append(f"{channels} input channels for streams {list(streams)}, where "
                            f"{raw} per stream were expected")
        if problems:
            raise ValueError(f"Member {member.name!r} does not fit the ensemble: "
                             + "; ".join(problems) + ". Ensemble models trained on the same "
                             "dataset with the same frames.")
    return raw


def ensemble(members: Sequence[keras.Model], member_streams: Sequence[Sequence[str]],
             name: str = "ensemble") -> keras.Model:
    """One model whose output is the mean of its members' logits, each member fed the streams
    it was trained on out of one input that holds all of them.

    The members keep their weights (they are used, not copied); each is renamed `member<i>`
    so that members of the same family can sit side by side. The result exports as one
    TFLite file like any model of the package.

    Args:
        members: Trained logits models of the same frames, joints and classes.
        member_streams: The streams (`"joint"`, `"bone"`, `"motion"`) each member takes, in
            its input's channel order.
        name: Model name.

    Returns:
        A functional `keras.Model` mapping `(N, T, V, C * S)` to `(N, classes)` logits, where
        the S streams are `union_of_streams(member_streams)`.

    Example:
        >>> from keras_gcnprune.models import attention_gcn
        >>> joint = attention_gcn("sbu", num_classes=8, frames=16)
        >>> motion = attention_gcn("sbu", num_classes=8, frames=16)
        >>> ensemble([joint, motion], [("joint",), ("motion",)]).input_shape
        (None, 16, 15, 6)
    """
    raw = _check_members(members, member_streams)
    streams = union_of_streams(member_streams)
    frames, joints = members[0].input_shape[1:3]
    inputs = keras.Input((frames, joints, raw * len(streams)), name="skeleton")
    logits = []
    for index, (member, taken) in enumerate(zip(members, member_streams)):
        member.name = f"member{index}"
        picked = SelectStreams(streams, taken, name=f"member{index}_streams")(inputs)
        logits.append(member(picked))
    outputs = keras.layers.Average(name="mean_logits")(logits)
    return keras.Model(inputs, outputs, name=name)
