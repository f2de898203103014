"""The temporal hard-negative miner against a brute-force pure-Python reference."""

from __future__ import annotations

import itertools
import random

import pytest
import torch

from mcss.distances import pairwise_distances
from mcss.mining import TemporalHardNegativeMiner, Triplets, mine_triplets


def random_batch(seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """2-3 sequences, several instants each (some closer than the gaps under test), 2-4
    cameras with missing views; distances rounded to 0.1 so that ties are frequent."""
    rng = random.Random(seed)
    n_cameras = rng.randint(2, 4)
    rows: list[tuple[int, float, int]] = []
    while len(rows) < 24:
        rows = []
        for s in range(rng.randint(2, 3)):
            for t in rng.sample(range(40), rng.randint(3, 6)):
                cams = [c for c in range(n_cameras) if rng.random() < 0.75]
                rows += [(s, t, c) for c in cams]
    rows = rows[:40]
    rng.shuffle(rows)
    g = torch.Generator().manual_seed(seed)
    dist = torch.rand(len(rows), len(rows), generator=g, dtype=torch.float64).mul(10).round() / 10
    sequence = torch.tensor([r[0] for r in rows])
    time = torch.tensor([r[1] for r in rows])
    if seed % 3 == 0:  # float times (e.g. seconds) work too
        time = time.double() * 0.5 + 0.25
    camera = torch.tensor([r[2] for r in rows])
    return dist, sequence, time, camera


def reference(
    dist: torch.Tensor,
    sequence: torch.Tensor,
    time: torch.Tensor,
    camera: torch.Tensor,
    *,
    min_gap: float,
    max_gap: float | None,
    strategy: str,
    margin: float,
    other_sequences: bool,
    negative_camera: str = "any",
) -> list[tuple[int, int, int]]:
    d, s, t, v = dist.tolist(), sequence.tolist(), time.tolist(), camera.tolist()
    n = len(s)

    def is_negative(i: int, k: int) -> bool:
        if s[i] != s[k]:
            return other_sequences
        gap = abs(t[i] - t[k])
        return gap >= min_gap and (max_gap is None or gap <= max_gap)

    out = []
    for i in range(n):
        for j in range(n):
            if not (s[i] == s[j] and t[i] == t[j] and v[i] != v[j]):
                continue
            ks = [k for k in range(n) if is_negative(i, k)
                  and (negative_camera == "any" or v[k] == v[j])]
            if strategy == "semihard":
                ks = [k for k in ks if d[i][j] < d[i][k] < d[i][j] + margin]
            if strategy == "all":
                out += [(i, j, k) for k in ks]
            elif ks:
                best = ks[0]
                for k in ks:
                    if d[i][k] < d[i][best]:
                        best = k
                out.append((i, j, best))
    return out


def as_list(tr: Triplets) -> list[tuple[int, int, int]]:
    return list(zip(tr.anchor.tolist(), tr.positive.tolist(), tr.negative.tolist(), strict=True))


OPTIONS = list(itertools.product(("hardest", "semihard", "all"), (None, 12.0), (False, True),
                                 ("any", "positive")))


@pytest.mark.parametrize("seed", range(30))
def test_matches_brute_force(seed: int) -> None:
    dist, sequence, time, camera = random_batch(seed)
    min_gap = 5.0 if seed % 2 else 3
    for strategy, max_gap, other, negative_camera in OPTIONS:
        opts = dict(min_gap=min_gap, max_gap=max_gap, strategy=strategy, margin=0.3,
                    other_sequences=other, negative_camera=negative_camera)
        got = mine_triplets(dist, sequence, time, camera, **opts)
        want = reference(dist, sequence, time, camera, **opts)
        # Same triples, in the documented (anchor, positive, negative) order.
        assert as_list(got) == want, opts
        assert got.anchor.dtype == torch.long
        # Never a negative of the same sequence within min_gap of its anchor.
        a, n = got.anchor, got.negative
        same = sequence[a] == sequence[n]
        assert not ((time[a] - time[n]).abs()[same] < min_gap).any()


def test_batches_are_not_trivial() -> None:
    """The random batches exercise every case: positives, semi-hard drops, ties."""
    totals = {s: 0 for s in ("hardest", "semihard", "all")}
    for seed in range(30):
        dist, sequence, time, camera = random_batch(seed)
        for s in totals:
            totals[s] += len(mine_triplets(dist, sequence, time, camera, min_gap=3, strategy=s))
    assert 0 < totals["semihard"] < totals["hardest"] < totals["all"]


def test_small_example_by_hand() -> None:
    # One sequence: instants t=0 (cams 0, 1), t=2 (cam 0), t=10 (cam 1); another sequence t=0.
    sequence = torch.tensor([0, 0, 0, 0, 1])
    time = torch.tensor([0, 0, 2, 10, 0])
    camera = torch.tensor([0, 1, 0, 1, 0])
    dist = torch.tensor(
        [
            [0.0, 0.5, 0.1, 0.9, 0.2],
            [0.5, 0.0, 0.1, 0.6, 0.3],
            [0.1, 0.1, 0.0, 0.7, 0.4],
            [0.9, 0.6, 0.7, 0.0, 0.8],
            [0.2, 0.3, 0.4, 0.8, 0.0],
        ]
    )
    # Item 2 (t=2) is within min_gap=5 of the anchors: never a negative, though it is nearest.
    tr = mine_triplets(dist, sequence, time, camera, min_gap=5, strategy="hardest")
    assert as_list(tr) == [(0, 1, 3), (1, 0, 3)]
    # With other sequences, item 4 is nearer than item 3 for both anchors.
    tr = mine_triplets(dist, sequence, time, camera, min_gap=5, other_sequences=True,
                      strategy="hardest")
    assert as_list(tr) == [(0, 1, 4), (1, 0, 4)]
    # Semi-hard: d(a,p) = 0.5 < d(a,n) < 0.5 + 0.2; only 0.6 (anchor 1, item 3) qualifies.
    tr = mine_triplets(
        dist, sequence, time, camera, min_gap=5, strategy="semihard", other_sequences=True
    )
    assert as_list(tr) == [(1, 0, 3)]
    # Negatives from the positive's camera only: for anchor 0 (positive 1, camera 1) that is
    # item 3 (camera 1); for anchor 1 (positive 0, camera 0) item 4, of the other sequence.
    tr = mine_triplets(dist, sequence, time, camera, min_gap=5, other_sequences=True,
                       negative_camera="positive", strategy="hardest")
    assert as_list(tr) == [(0, 1, 3), (1, 0, 4)]
    assert len(mine_triplets(dist, sequence, time, camera, min_gap=5, strategy="hardest",
                             negative_camera="positive")) == 1
    # max_gap below 10 leaves no negative at all.
    assert len(mine_triplets(dist, sequence, time, camera, min_gap=5, max_gap=8)) == 0


def test_miner_object_uses_normalised_distances() -> None:
    g = torch.Generator().manual_seed(0)
    dist, sequence, time, camera = random_batch(1)
    emb = torch.randn(len(sequence), 8, generator=g, requires_grad=True)
    miner = TemporalHardNegativeMiner(min_gap=3, strategy="semihard", margin=0.5)
    got = miner(emb, sequence, time, camera)
    want = mine_triplets(
        pairwise_distances(emb.detach()),
        sequence,
        time,
        camera,
        min_gap=3,
        strategy="semihard",
        margin=0.5,
    )
    assert as_list(got) == as_list(want)
    assert len(got) > 0
    # Rescaling embeddings changes nothing: the distance sees normalised vectors.
    assert as_list(miner(emb.detach() * 7.0, sequence, time, camera)) == as_list(got)


def test_no_positives_gives_empty_triplets() -> None:
    tr = mine_triplets(
        torch.zeros(3, 3),
        torch.tensor([0, 0, 1]),
        torch.tensor([0, 9, 0]),
        torch.tensor([0, 0, 0]),
        min_gap=1,
    )
    assert len(tr) == 0 and tr.anchor.dtype == torch.long


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(min_gap=5, strategy="easiest"), "unknown mining strategy"),
        (dict(min_gap=0.5), "min_gap must be >= 1"),
        (dict(min_gap=5, max_gap=4), "max_gap"),
        (dict(min_gap=5, margin=-0.1), "margin"),
        (dict(min_gap=5, negative_camera="anchor"), "negative_camera"),
    ],
)
def test_bad_options(kwargs: dict, message: str) -> None:
    s = torch.zeros(4, dtype=torch.long)
    with pytest.raises(ValueError, match=message):
        mine_triplets(torch.zeros(4, 4), s, s, s, **kwargs)
    with pytest.raises(ValueError, match=message):
        TemporalHardNegativeMiner(**kwargs)


def test_mismatched_lengths() -> None:
    s = torch.zeros(4, dtype=torch.long)
    with pytest.raises(ValueError, match="time must have shape"):
        mine_triplets(torch.zeros(4, 4), s, s[:3], s, min_gap=2)
    with pytest.raises(ValueError, match="square"):
        mine_triplets(torch.zeros(4, 3), s, s, s, min_gap=2)


def test_triplets_must_have_equal_lengths() -> None:
    with pytest.raises(ValueError, match="equal length"):
        Triplets(
            torch.zeros(2, dtype=torch.long),
            torch.zeros(2, dtype=torch.long),
            torch.zeros(3, dtype=torch.long),
        )
