"""Distances, pose losses and the triplet loss on hand-computed cases."""

from __future__ import annotations

import math

import pytest
import torch

from mcss.distances import mean_pairwise_cosine, pairwise_distances
from mcss.losses import TripletLoss, pose_loss, triplet_margin_loss
from mcss.mining import TemporalHardNegativeMiner, Triplets


def unit(deg: float) -> list[float]:
    return [math.cos(math.radians(deg)), math.sin(math.radians(deg))]


def triplets(*rows: tuple[int, int, int]) -> Triplets:
    a, p, n = (torch.tensor(c, dtype=torch.long) for c in zip(*rows, strict=True))
    return Triplets(a, p, n)


# ----------------------------------------------------------------------------- distances


def test_distances_on_known_vectors() -> None:
    e = torch.eye(3)
    d = pairwise_distances(e)
    off = ~torch.eye(3, dtype=torch.bool)
    assert torch.allclose(d[off], torch.full((6,), math.sqrt(2)))
    assert torch.equal(d.diagonal(), torch.zeros(3))
    assert torch.allclose(pairwise_distances(e, squared=True)[off], torch.full((6,), 2.0))
    # Normalisation: (3, 0) and (0, 4) are orthogonal unit vectors once normalised.
    x = torch.tensor([[3.0, 0.0]])
    y = torch.tensor([[0.0, 4.0], [-2.0, 0.0]])
    assert torch.allclose(pairwise_distances(x, y), torch.tensor([[math.sqrt(2), 2.0]]))
    # Without normalisation: plain Euclidean.
    assert torch.allclose(pairwise_distances(x, y, normalize=False), torch.tensor([[5.0, 5.0]]))
    assert torch.allclose(
        pairwise_distances(x, y, normalize=False, squared=True), torch.tensor([[25.0, 25.0]])
    )


def test_distance_gradient_finite_when_embeddings_coincide() -> None:
    emb = torch.tensor([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [0.0, 1.0, 0.0]], requires_grad=True)
    d = pairwise_distances(emb)
    assert d[0, 1] == 0
    d.sum().backward()
    assert torch.isfinite(emb.grad).all()
    emb2 = emb.detach().clone().requires_grad_(True)
    pairwise_distances(emb2, emb2.detach().clone()).sum().backward()  # cross distances too
    assert torch.isfinite(emb2.grad).all()


def test_distance_gradient_matches_finite_differences() -> None:
    x = torch.randn(5, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    y = torch.randn(3, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    x.requires_grad_(True)
    y.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b: pairwise_distances(a, b), (x, y))


def test_mean_pairwise_cosine() -> None:
    assert mean_pairwise_cosine(torch.tensor([[1.0, 2.0]] * 5)) == pytest.approx(1.0)
    assert mean_pairwise_cosine(torch.eye(4)) == pytest.approx(0.0)
    # Two opposite vectors: cosine -1; scale does not matter.
    assert mean_pairwise_cosine(torch.tensor([[2.0, 0.0], [-5.0, 0.0]])) == pytest.approx(-1.0)
    with pytest.raises(ValueError):
        mean_pairwise_cosine(torch.ones(1, 3))


# ----------------------------------------------------------------------------- pose losses


def test_pose_losses_by_hand() -> None:
    pred = torch.zeros(2, 2, 3)
    target = torch.tensor(
        [
            [[3.0, 4.0, 0.0], [0.0, 0.0, 1.0]],  # row 0: joint errors 5 and 1
            [[1.0, 0.0, 0.0], [0.0, 2.0, -2.0]],  # row 1: joint errors 1 and sqrt(8)
        ]
    )
    # L1: |coords| sum = 3+4+1 + 1+2+2 = 13 over 12 coordinates.
    assert pose_loss(pred, target, "l1").item() == pytest.approx(13 / 12)
    # L2: squares sum = 9+16+1 + 1+4+4 = 35 over 12 coordinates.
    assert pose_loss(pred, target, "l2").item() == pytest.approx(35 / 12)
    # MPJPE: (5 + 1 + 1 + sqrt(8)) / 4 joints.
    assert pose_loss(pred, target, "mpjpe").item() == pytest.approx((7 + math.sqrt(8)) / 4)


def test_pose_loss_weights_ignore_rows() -> None:
    pred = torch.zeros(2, 2, 3, requires_grad=True)
    target = torch.tensor([[[3.0, 4.0, 0.0], [0.0, 0.0, 1.0]], [[math.nan] * 3] * 2])
    for kind, want in (("l1", 8 / 6), ("l2", 26 / 6), ("mpjpe", 3.0)):
        loss = pose_loss(pred, target, kind, weights=torch.tensor([1.0, 0.0]))
        assert loss.item() == pytest.approx(want)
        (grad,) = torch.autograd.grad(loss, pred)
        assert torch.isfinite(grad).all() and (grad[1] == 0).all()
    zero = pose_loss(pred, target, "l1", weights=torch.zeros(2))
    assert zero.item() == 0.0
    zero.backward()
    assert torch.isfinite(pred.grad).all()


def test_pose_loss_mpjpe_gradient_finite_at_zero_error() -> None:
    pred = torch.ones(1, 17, 3, requires_grad=True)
    pose_loss(pred, torch.ones(1, 17, 3), "mpjpe").backward()
    assert torch.isfinite(pred.grad).all()


def test_pose_loss_rejects_bad_input() -> None:
    x = torch.zeros(2, 17, 3)
    with pytest.raises(ValueError, match="unknown pose loss"):
        pose_loss(x, x, "huber")
    with pytest.raises(ValueError, match=r"\(B, J, 3\)"):
        pose_loss(x, x[:, :16], "l1")
    with pytest.raises(ValueError, match="weights"):
        pose_loss(x, x, "l1", weights=torch.ones(3))


# ----------------------------------------------------------------------------- triplet loss

# Four embeddings on the unit circle at 0, 60, 90 and 180 degrees (item 1 scaled by 3: the
# loss normalises). Chord lengths 2 sin(angle / 2):
#   d(0,1) = 2 sin 30 = 1          d(0,2) = 2 sin 45 = sqrt(2) = 1.414214
#   d(1,3) = 2 sin 60 = sqrt(3) = 1.732051
FOUR = torch.tensor([unit(0), [3 * c for c in unit(60)], unit(90), unit(180)])


def test_triplet_loss_by_hand() -> None:
    emb = FOUR.clone().requires_grad_(True)
    # margin 1: (0,1,2): 1 - 1.414214 + 1 = 0.585786;  (1,0,3): 1 - 1.732051 + 1 = 0.267949
    loss, stats = triplet_margin_loss(emb, triplets((0, 1, 2), (1, 0, 3)), margin=1.0)
    assert loss.item() == pytest.approx((0.585786 + 0.267949) / 2, abs=1e-5)  # 0.426868
    assert stats["num_triplets"] == 2
    assert stats["active_fraction"] == 1.0
    assert stats["mean_pos_dist"] == pytest.approx(1.0, abs=1e-5)
    assert stats["mean_neg_dist"] == pytest.approx((1.414214 + 1.732051) / 2, abs=1e-5)
    loss.backward()
    assert torch.isfinite(emb.grad).all() and emb.grad.abs().sum() > 0


def test_active_fraction_one_of_two() -> None:
    # margin 0.5: (0,1,2): 1 - 1.414214 + 0.5 = 0.085786 (active);
    #             (0,1,3): 1 - 2 + 0.5 = -0.5 -> 0 (inactive).   Mean: 0.042893.
    loss, stats = triplet_margin_loss(FOUR, triplets((0, 1, 2), (0, 1, 3)), margin=0.5)
    assert loss.item() == pytest.approx(0.042893, abs=1e-5)
    assert stats["active_fraction"] == 0.5
    assert stats["mean_neg_dist"] == pytest.approx((1.414214 + 2.0) / 2, abs=1e-5)


def test_empty_triplets_zero_loss_and_backward() -> None:
    emb = FOUR.clone().requires_grad_(True)
    loss, stats = triplet_margin_loss(emb, Triplets.empty(), margin=0.2)
    assert loss.item() == 0.0 and loss.grad_fn is not None
    loss.backward()
    assert torch.equal(emb.grad, torch.zeros_like(emb))
    assert stats["num_triplets"] == 0 and stats["active_fraction"] == 0.0


def test_triplet_loss_gradient_finite_when_anchor_equals_positive() -> None:
    emb = torch.tensor([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0]], requires_grad=True)
    loss, _ = triplet_margin_loss(emb, triplets((0, 1, 2)), margin=2.0)
    # d(a,p) = 0, d(a,n) = sqrt(2): loss 2 - sqrt(2).
    assert loss.item() == pytest.approx(2 - math.sqrt(2), abs=1e-6)
    loss.backward()
    assert torch.isfinite(emb.grad).all()


def test_triplet_loss_module_composes_miner_and_loss() -> None:
    # One sequence, instants 0 and 10 seen by cameras 0 and 1.
    sequence = torch.zeros(4, dtype=torch.long)
    time = torch.tensor([0, 0, 10, 10])
    camera = torch.tensor([0, 1, 0, 1])
    emb = torch.tensor([unit(0), unit(60), unit(90), unit(180)], requires_grad=True)
    criterion = TripletLoss(TemporalHardNegativeMiner(min_gap=5, margin=1.0, strategy="hardest"))
    loss, stats = criterion(emb, sequence, time, camera)
    # Hardest negatives (the other instant): anchor 0 -> item 2 (sqrt(2) < 2); anchors 1, 2
    # and 3 -> item 1 or 2, the nearest: d(1,2) = 2 sin 15 = 0.517638, d(3,1) = sqrt(3) < 2.
    # d(0,1) = 1, d(2,3) = 2 sin 45 = 1.414214. Per triple (margin 1):
    #   (0,1,2) 1 - 1.414214 + 1 = 0.585786     (1,0,2) 1 - 0.517638 + 1 = 1.482362
    #   (2,3,1) 1.414214 - 0.517638 + 1 = 1.896576   (3,2,1) 1.414214 - 1.732051 + 1 = 0.682163
    assert stats["num_triplets"] == 4
    assert stats["active_fraction"] == 1.0
    assert loss.item() == pytest.approx((0.585786 + 1.482362 + 1.896576 + 0.682163) / 4, abs=1e-5)
    loss.backward()
    assert torch.isfinite(emb.grad).all()
    assert criterion.margin == 1.0
    with pytest.raises(ValueError, match="margin"):
        triplet_margin_loss(emb, Triplets.empty(), margin=-1.0)
