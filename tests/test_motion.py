"""Motion sources (DeepMimic, BVH, procedural) and take variations."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mcss.motion import (
    ACROBATIC_CLIPS,
    DEFAULT_CLIPS,
    PROCEDURAL_KINDS,
    Motion,
    blend,
    clip_paths,
    load_bvh,
    load_deepmimic,
    mirror_motion,
    place,
    procedural_motion,
    retime,
    rotation_noise,
    set_bone_lengths,
    vary,
)
from mcss.motion.bvh import CMU_UNIT_MM, bvh_fk, parse_bvh
from mcss.skeleton import BONES, JOINT_INDEX, bone_lengths

J = JOINT_INDEX


def _deepmimic_available() -> str | None:
    try:
        clip_paths("all")
    except FileNotFoundError as exc:
        return str(exc)
    return None


_DM_MISSING = _deepmimic_available()


@pytest.fixture(scope="module")
def dm_clips() -> dict[str, Motion]:
    if _DM_MISSING:
        pytest.skip(f"pybullet_data DeepMimic clips absent: {_DM_MISSING}")
    return {name: load_deepmimic(path) for name, path in clip_paths("all").items()}


@pytest.fixture(scope="module")
def walk() -> Motion:
    return procedural_motion("walk", 60, 30.0, np.random.default_rng(3))


def assert_rigid(m: Motion, tol_mm: float = 1.0) -> None:
    std = bone_lengths(m.joints).std(axis=0)
    assert std.max() < tol_mm, f"{m.name}: bone length std {std.max():.3f} mm"


def left_of_travel(m: Motion) -> np.ndarray:
    """Signed distance of the left hip to the left of the pelvis, with "forward" taken from
    the pelvis path (independent of the joint labels): right = forward x up."""
    fwd = m.joints[-1, 0] - m.joints[0, 0]
    fwd[2] = 0.0
    fwd /= np.linalg.norm(fwd)
    right = np.cross(fwd, [0.0, 0.0, 1.0])
    return -(m.joints[:, J["left_hip"]] - m.joints[:, J["pelvis"]]) @ right


# ----------------------------------------------------------------------------- DeepMimic


def test_clip_sets() -> None:
    with pytest.raises(ValueError, match="default"):
        clip_paths("acrobatic")
    if _DM_MISSING:
        pytest.skip(f"pybullet_data DeepMimic clips absent: {_DM_MISSING}")
    assert list(clip_paths()) == list(DEFAULT_CLIPS)
    assert list(clip_paths("all")) == list(DEFAULT_CLIPS + ACROBATIC_CLIPS)


def test_deepmimic_rigid_and_placed(dm_clips: dict[str, Motion]) -> None:
    for name, m in dm_clips.items():
        assert m.joints.shape[1:] == (17, 3) and m.fps == 30.0
        assert_rigid(m, tol_mm=1e-6)
        np.testing.assert_allclose(m.joints[0, 0, :2], 0.0, atol=1e-9)
        assert m.joints[..., 2].min() >= 40.0 - 1e-6, name
        if name in DEFAULT_CLIPS:
            assert abs(m.joints[:, [J["right_foot"], J["left_foot"]], 2].min() - 80.0) < 1e-6


def test_deepmimic_heights(dm_clips: dict[str, Motion]) -> None:
    for name in DEFAULT_CLIPS:
        top = dm_clips[name].joints[:, J["head"], 2].max()
        assert 1400.0 < top < 2000.0, f"{name}: head reaches {top:.0f} mm"
    # Standing stature along the skeleton, whatever the clip's poses.
    for name, m in dm_clips.items():
        lengths = bone_lengths(m.joints[0])
        chain = [("right_hip", "right_knee"), ("right_knee", "right_foot"), ("pelvis", "spine"),
                 ("spine", "thorax")]  # fmt: skip
        bones = [(J[a], J[b]) for a, b in chain]
        stature = 80.0 + sum(lengths[BONES.index(b)] for b in bones) + 215.0
        assert 1400.0 < stature < 2000.0, name


def test_deepmimic_walk_left_is_left(dm_clips: dict[str, Motion]) -> None:
    m = dm_clips["walk"]
    assert np.linalg.norm(m.joints[-1, 0, :2]) > 800.0  # it walks
    assert (left_of_travel(m) > 40.0).all()
    mirrored = mirror_motion(m)
    assert (left_of_travel(mirrored) > 40.0).all()


def test_deepmimic_resampling(dm_clips: dict[str, Motion]) -> None:
    slow = load_deepmimic(clip_paths()["run"], fps=60.0)
    assert slow.fps == 60.0
    assert abs(slow.duration - dm_clips["run"].duration) < 1.0 / 30.0
    fast = dm_clips["run"].joints[:10]
    # Same poses at the shared instants; only the floor shift may differ (finer sampling).
    np.testing.assert_allclose(
        slow.joints[::2][:10] - slow.joints[0, 0], fast - fast[0, 0], atol=1e-6
    )


def test_deepmimic_fk_matches_pybullet() -> None:
    """Our FK against pybullet's own, on the humanoid as DeepMimic loads it."""
    if _DM_MISSING:
        pytest.skip(f"pybullet_data DeepMimic clips absent: {_DM_MISSING}")
    pb = pytest.importorskip("pybullet")
    import pybullet_data

    from mcss.motion import deepmimic as dm

    rows = np.array(json.loads(clip_paths()["kick"].read_text())["Frames"])[[3, 20]]
    ours = dm.deepmimic_fk(rows)
    client = pb.connect(pb.DIRECT)
    try:
        pb.setAdditionalSearchPath(pybullet_data.getDataPath(), physicsClientId=client)
        body = pb.loadURDF(
            "humanoid/humanoid.urdf",
            globalScaling=0.25,
            flags=pb.URDF_MAINTAIN_LINK_ORDER,
            physicsClientId=client,
        )
        index = {
            pb.getJointInfo(body, i, physicsClientId=client)[1].decode(): i
            for i in range(pb.getNumJoints(body, physicsClientId=client))
        }
        for k, r in enumerate(rows):

            def xyzw(q: np.ndarray) -> list[float]:
                return [q[1], q[2], q[3], q[0]]

            pb.resetBasePositionAndOrientation(body, r[1:4], xyzw(r[4:8]), physicsClientId=client)
            for link, (start, size) in dm._LAYOUT.items():
                value = xyzw(r[start : start + 4]) if size == 4 else [r[start]]
                pb.resetJointStateMultiDof(body, index[link], value, physicsClientId=client)
            for h36m, link in dm.H36M_FROM_DEEPMIMIC.items():
                if link in index:
                    frame = pb.getLinkState(body, index[link], physicsClientId=client)[4]
                    np.testing.assert_allclose(ours[k, J[h36m]], frame, atol=1e-6)
    finally:
        pb.disconnect(client)


# ----------------------------------------------------------------------------- BVH

_SMALL_BVH = """HIERARCHY
ROOT Hips
{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
  JOINT Chest
  {
    OFFSET 0 10 0
    CHANNELS 3 Zrotation Xrotation Yrotation
    End Site
    {
      OFFSET 0 5 0
    }
  }
  JOINT Leg
  {
    OFFSET 2 0 0
    CHANNELS 3 Xrotation Yrotation Zrotation
    End Site
    {
      OFFSET 0 -8 0
    }
  }
}
MOTION
Frames: 2
Frame Time: 0.04
1 2 3 0 0 0   90 90 0   0 0 90
0 0 0 90 0 0   0 0 0    0 0 0
"""


def test_bvh_fk_hand_computed() -> None:
    data = parse_bvh(_SMALL_BVH)
    assert data.names == ["Hips", "Chest", "Chest_End", "Leg", "Leg_End"]
    assert data.frame_time == pytest.approx(0.04)
    pos = bvh_fk(data)
    # Frame 0: chest rotation Rz(90) @ Rx(90) takes (0, 5, 0) to (0, 0, 5) (the other order
    # would give (-5, 0, 0)); the leg's Rz(90) takes (0, -8, 0) to (8, 0, 0).
    expected0 = [[1, 2, 3], [1, 12, 3], [1, 12, 8], [3, 2, 3], [11, 2, 3]]
    # Frame 1: the root's Rz(90) turns everything: (x, y, z) -> (-y, x, z).
    expected1 = [[0, 0, 0], [-10, 0, 0], [-15, 0, 0], [0, 2, 0], [8, 2, 0]]
    np.testing.assert_allclose(pos[0], expected0, atol=1e-9)
    np.testing.assert_allclose(pos[1], expected1, atol=1e-9)


# A CMU-style skeleton (offsets of a CMU BVH in CMU units of 1/0.45 inch): name, parent, offset.
_CMU = [
    ("Hips", None, (0, 0, 0)),
    ("LHipJoint", "Hips", (0, 0, 0)),
    ("LeftUpLeg", "LHipJoint", (1.8559, -1.7395, 0.8498)),
    ("LeftLeg", "LeftUpLeg", (2.3684, -6.5070, 0)),
    ("LeftFoot", "LeftLeg", (2.5327, -6.9585, 0)),
    ("RHipJoint", "Hips", (0, 0, 0)),
    ("RightUpLeg", "RHipJoint", (-1.6830, -1.7395, 0.8498)),
    ("RightLeg", "RightUpLeg", (-2.4471, -6.7233, 0)),
    ("RightFoot", "RightLeg", (-2.4384, -6.6995, 0)),
    ("LowerBack", "Hips", (0, 0, 0)),
    ("Spine", "LowerBack", (-0.0156, 2.2397, -0.0371)),
    ("Spine1", "Spine", (0.0549, 2.1923, -0.1909)),
    ("Neck", "Spine1", (0, 0, 0)),
    ("Neck1", "Neck", (-0.1240, 1.4317, 0.2759)),
    ("Head", "Neck1", (0.1786, 1.4617, -0.3258)),
    ("LeftShoulder", "Spine1", (0, 0, 0)),
    ("LeftArm", "LeftShoulder", (3.2765, 0.8563, 0.0540)),
    ("LeftForeArm", "LeftArm", (4.9676, 0, 0)),
    ("LeftHand", "LeftForeArm", (3.3575, 0, 0)),
    ("RightShoulder", "Spine1", (0, 0, 0)),
    ("RightArm", "RightShoulder", (-3.2443, 1.0203, 0.3469)),
    ("RightForeArm", "RightArm", (-5.2186, 0, 0)),
    ("RightHand", "RightForeArm", (-3.3650, 0, 0)),
]
_END_SITES = {"LeftFoot": (0, -0.5, 2.0), "RightFoot": (0, -0.5, 2.0), "Head": (0.07, 1.52, -0.15),
              "LeftHand": (1.0, 0, 0), "RightHand": (-1.0, 0, 0)}  # fmt: skip


def _cmu_bvh(frames: int, rng: np.random.Generator, drop: str | None = None) -> str:
    """A CMU-style BVH: walking forward (+z) 1 unit per frame, small random rotations."""
    joints = [j for j in _CMU if j[0] != drop]

    def block(name: str, depth: int) -> list[str]:
        pad = "  " * depth
        _, parent, off = next(j for j in joints if j[0] == name)
        head = "ROOT" if parent is None else "JOINT"
        chans = "CHANNELS 6 Xposition Yposition Zposition Zrotation Yrotation Xrotation"
        if parent is not None:
            chans = "CHANNELS 3 Zrotation Yrotation Xrotation"
        lines = [f"{pad}{head} {name}", f"{pad}{{", f"{pad}  OFFSET {off[0]} {off[1]} {off[2]}"]
        lines.append(f"{pad}  {chans}")
        for child in [j[0] for j in joints if j[1] == name]:
            lines += block(child, depth + 1)
        if name in _END_SITES:
            e = _END_SITES[name]
            lines += [f"{pad}  End Site", f"{pad}  {{", f"{pad}    OFFSET {e[0]} {e[1]} {e[2]}"]
            lines.append(f"{pad}  }}")
        lines.append(f"{pad}}}")
        return lines

    n_rot = 3 * len(joints)
    values = rng.uniform(-15.0, 15.0, size=(frames, n_rot))
    root_pos = np.stack([np.zeros(frames), np.full(frames, 16.5), np.arange(frames)], axis=-1)
    rows = np.concatenate([root_pos, values], axis=1)
    motion = "\n".join(" ".join(f"{v:.5f}" for v in row) for row in rows)
    hierarchy = "\n".join(block("Hips", 0))
    return f"HIERARCHY\n{hierarchy}\nMOTION\nFrames: {frames}\nFrame Time: 0.0083333\n{motion}\n"


def test_bvh_cmu_mapping_units_and_axes(tmp_path) -> None:
    rng = np.random.default_rng(0)
    path = tmp_path / "cmu.bvh"
    path.write_text(_cmu_bvh(24, rng))
    m = load_bvh(path, normalise=False)
    assert m.fps == pytest.approx(120.0, rel=1e-3)
    assert_rigid(m, tol_mm=1e-6)
    # Frame 0 with no rotations would put the left hip at (x, -z, y) * unit; check bone length.
    thigh = np.linalg.norm(np.array([2.3684, -6.5070, 0])) * CMU_UNIT_MM
    hip = J["left_hip"], J["left_knee"]
    np.testing.assert_allclose(
        np.linalg.norm(m.joints[:, hip[1]] - m.joints[:, hip[0]], axis=-1), thigh
    )
    # Walking along BVH +z (forward) is -y in z-up; the left hip (BVH +x) stays on the left.
    assert m.joints[-1, 0, 1] < m.joints[0, 0, 1]
    assert (left_of_travel(m) > 40.0).all()
    height = m.joints[:, J["head"], 2].max() - m.joints[:, J["left_foot"], 2].min()
    assert 1200.0 < height < 2000.0
    # Rest pose (zero rotations) hand-computed: left hip = unit * (x, -z, y) of its position.
    zero = _cmu_bvh(1, np.random.default_rng(1)).splitlines()
    zero[-1] = " ".join(["0", "16.5", "0"] + ["0"] * 3 * len(_CMU))
    path.write_text("\n".join(zero) + "\n")
    rest = load_bvh(path, normalise=False).joints[0]
    bvh_hip = np.array([1.8559, 16.5 - 1.7395, 0.8498])
    expected = CMU_UNIT_MM * np.array([bvh_hip[0], -bvh_hip[2], bvh_hip[1]])
    np.testing.assert_allclose(rest[J["left_hip"]], expected, atol=1e-6)


def test_bvh_units_names_and_resampling(tmp_path) -> None:
    path = tmp_path / "cmu.bvh"
    path.write_text(_cmu_bvh(12, np.random.default_rng(2)))
    with pytest.raises(ValueError, match="implausible"):
        load_bvh(path, units_to_mm=10.0)  # centimetres would make a 25 cm person
    cm = load_bvh(path, units_to_mm=10.0, check_height=False)
    auto = load_bvh(path)
    assert_rigid(cm, tol_mm=1e-6)
    ratio = bone_lengths(auto.joints[0]) / bone_lengths(cm.joints[0])
    np.testing.assert_allclose(ratio, CMU_UNIT_MM / 10.0)
    assert load_bvh(path, fps=30.0).num_frames == 3 + 1  # 11 frames at 120 Hz -> 0.0917 s
    path.write_text(_cmu_bvh(4, np.random.default_rng(2), drop="LeftForeArm").replace(
        "LeftHand", "LeftWristX"))  # fmt: skip
    with pytest.raises(ValueError, match="left_elbow"):
        load_bvh(path)
    with pytest.raises(ValueError, match="left_wrist"):
        load_bvh(path, name_map={"left_elbow": "LeftArm"})


# ----------------------------------------------------------------------------- procedural


def test_procedural_kinds_rigid_and_deterministic() -> None:
    for kind in PROCEDURAL_KINDS:
        a = procedural_motion(kind, 45, 30.0, np.random.default_rng(7))
        b = procedural_motion(kind, 45, 30.0, np.random.default_rng(7))
        np.testing.assert_array_equal(a.joints, b.joints)
        assert_rigid(a, tol_mm=1e-6)
        height = a.joints[:, J["head"], 2].max()
        assert 1500.0 < height < 1900.0, kind
        assert a.joints[..., 2].min() > 0.0
    with pytest.raises(ValueError, match="unknown"):
        procedural_motion("moonwalk", 10, 30.0, np.random.default_rng(0))


def test_procedural_walk_left_is_left(walk: Motion) -> None:
    assert (left_of_travel(walk) > 40.0).all()


# ----------------------------------------------------------------------------- variations


def test_mirror_twice_is_identity_and_swaps_sides(walk: Motion) -> None:
    turned = place(walk, 0.7, (300.0, -200.0))
    once = mirror_motion(turned)
    np.testing.assert_allclose(mirror_motion(once).joints, turned.joints, atol=1e-9)
    assert_rigid(once, tol_mm=1e-6)
    assert (left_of_travel(once) > 40.0).all()  # the joint labelled left is on the left
    # The mirrored right hand is where the left hand was, reflected: a right wave -> left wave.
    wave = procedural_motion("wave", 40, 30.0, np.random.default_rng(11))
    high = lambda m: m.joints[20, [J["left_wrist"], J["right_wrist"]], 2]  # noqa: E731
    np.testing.assert_allclose(high(mirror_motion(wave)), high(wave)[::-1])


def test_retime_duration_and_rigidity(walk: Motion) -> None:
    for speed in (0.5, 0.8, 1.3, 2.0):
        r = retime(walk, speed)
        assert abs(r.duration - walk.duration / speed) <= 0.5 / walk.fps + 1e-9
        assert_rigid(r)
        np.testing.assert_allclose(r.joints[0], walk.joints[0], atol=1e-6)
    with pytest.raises(ValueError):
        retime(walk, 0.0)


def test_blend_keeps_bone_lengths(walk: Motion) -> None:
    other = procedural_motion("squat", 80, 30.0, np.random.default_rng(5))
    other = Motion(set_bone_lengths(other.joints, bone_lengths(other.joints[0]) * 1.1), 30.0, "big")
    for w in (0.0, 0.3, 1.0):
        b = blend(walk, other, w)
        assert b.num_frames == walk.num_frames
        assert_rigid(b, tol_mm=1e-6)
        expected = (1 - w) * bone_lengths(walk.joints[0]) + w * bone_lengths(other.joints[0])
        np.testing.assert_allclose(bone_lengths(b.joints[0]), expected, rtol=1e-6)
    np.testing.assert_allclose(blend(walk, other, 0.0).joints, walk.joints, atol=1e-6)
    with pytest.raises(ValueError):
        blend(walk, other, 1.5)


def test_rotation_noise_smooth_bounded_within_limits(walk: Motion) -> None:
    noisy = rotation_noise(walk, np.random.default_rng(0), max_deg=8.0)
    assert_rigid(noisy, tol_mm=1e-6)
    shift = np.linalg.norm(noisy.joints - walk.joints, axis=-1)
    assert 5.0 < shift.max() < 400.0

    # The trunk bone turns at most max_deg; frame-to-frame changes are smooth.
    def trunk(m: Motion) -> np.ndarray:
        d = m.joints[:, J["spine"]] - m.joints[:, J["pelvis"]]
        return d / np.linalg.norm(d, axis=-1, keepdims=True)

    angle = np.degrees(np.arccos(np.clip((trunk(noisy) * trunk(walk)).sum(-1), -1, 1)))
    assert angle.max() <= 8.0 + 1e-6
    assert np.abs(np.diff(angle)).max() < 2.0
    # Hinges never straighten past half their bend (so never bend backwards).
    for upper, mid, lower in [("right_hip", "right_knee", "right_foot"),
                              ("left_shoulder", "left_elbow", "left_wrist")]:  # fmt: skip

        def flexion(m: Motion, u=upper, k=mid, lo=lower) -> np.ndarray:
            a = m.joints[:, J[k]] - m.joints[:, J[u]]
            b = m.joints[:, J[lo]] - m.joints[:, J[k]]
            cos = (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)
            return np.arccos(np.clip(cos, -1.0, 1.0))

        assert (flexion(noisy) >= 0.5 * flexion(walk) - 1e-9).all()


def test_set_bone_lengths_and_place(walk: Motion) -> None:
    lengths = bone_lengths(walk.joints[0]) * np.linspace(0.9, 1.1, 16)
    rebuilt = set_bone_lengths(walk.joints, lengths)
    np.testing.assert_allclose(bone_lengths(rebuilt), np.broadcast_to(lengths, (60, 16)))
    np.testing.assert_allclose(set_bone_lengths(walk.joints, bone_lengths(walk.joints[0])),
                               walk.joints, atol=1e-6)  # fmt: skip
    placed = place(walk, np.pi / 2, (1000.0, 0.0))
    assert_rigid(placed, tol_mm=1e-6)
    np.testing.assert_allclose(placed.joints[0, 0, :2], [1000.0, 0.0], atol=1e-6)
    travel = placed.joints[-1, 0] - placed.joints[0, 0]
    assert travel[1] > 1000.0 and abs(travel[0]) < 50.0  # walking along +x now goes along +y


def test_vary_deterministic_rigid_and_different(walk: Motion) -> None:
    other = procedural_motion("wave", 50, 30.0, np.random.default_rng(9))
    takes = [vary(walk, np.random.default_rng(s), other=other) for s in (1, 1, 2)]
    np.testing.assert_array_equal(takes[0].joints, takes[1].joints)
    assert takes[0].name == takes[1].name
    for t in takes:
        assert_rigid(t)
        assert 0.75 * walk.num_frames <= t.num_frames <= 1.3 * walk.num_frames
    a, b = takes[0].joints, takes[2].joints
    assert a.shape != b.shape or np.abs(a - b).max() > 10.0


def test_every_dm_clip_varied_is_rigid(dm_clips: dict[str, Motion]) -> None:
    rng = np.random.default_rng(0)
    names = list(dm_clips)
    for i, name in enumerate(names):
        take = vary(dm_clips[name], rng, other=dm_clips[names[(i + 1) % len(names)]])
        assert_rigid(take)
