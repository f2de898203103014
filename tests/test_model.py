"""The network, its pose frames, the metrics it is judged by and the collapse monitor."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mcss.evaluate import collapse_warnings, pose_metrics, sanity_references
from mcss.geometry import canonical_body_frame, to_canonical
from mcss.metrics import left_right_parts, mpjpe, n_mpjpe, pa_mpjpe
from mcss.model import (
    MixStyle,
    PoseNet,
    antisymmetric_part,
    reverse_gradient,
    rotation_6d_to_matrix,
)


def _poses(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = np.array([[0, 0, 0], [130, 0, 0], [130, -450, 0], [130, -880, 0], [-130, 0, 0],
                     [-130, -450, 0], [-130, -880, 0], [0, 230, 0], [0, 480, 0], [0, 600, 30],
                     [0, 720, 0], [-170, 470, 0], [-170, 200, 0], [-170, -40, 0], [170, 470, 0],
                     [170, 200, 0], [170, -40, 0]], dtype=float)
    return base + rng.normal(0, 40, (n, 17, 3))


def test_rotation_6d_gives_rotations() -> None:
    r = rotation_6d_to_matrix(torch.randn(50, 6, dtype=torch.float64))
    eye = torch.eye(3, dtype=torch.float64).expand(50, 3, 3)
    assert torch.allclose(r @ r.transpose(1, 2), eye, atol=1e-12)
    assert torch.allclose(torch.linalg.det(r), torch.ones(50, dtype=torch.float64))


def test_camera_pose_is_rotation_times_canonical() -> None:
    torch.manual_seed(0)
    model = PoseNet(embedding_dim=16, hidden_dim=32).eval()
    for p in model.regressor[-1].parameters():
        torch.nn.init.normal_(p, std=0.1)
    out = model(torch.rand(3, 3, 32, 32))
    assert out.pose_camera.shape == (3, 17, 3) and out.embedding.shape == (3, 16)
    assert torch.allclose(out.pose_camera, out.pose_canonical @ out.rotation.transpose(1, 2))
    assert torch.equal(out.pose_camera[:, 0], torch.zeros(3, 3))
    ablation = PoseNet(embedding_dim=16, hidden_dim=32, pose_frame="camera").eval()
    assert ablation(torch.rand(2, 3, 32, 32)).rotation is None


def test_regressor_reads_the_feature_when_asked() -> None:
    """regress_from=feature: the embedding becomes a projection head for the metric loss
    only, so changing the embedding layer leaves the pose untouched."""
    torch.manual_seed(0)
    model = PoseNet(embedding_dim=16, hidden_dim=32, regress_from="feature").eval()
    assert model.regressor[0].in_features == model.embed.in_features
    torch.nn.init.normal_(model.regressor[-1].weight, std=0.1)
    images = torch.rand(2, 3, 32, 32)
    before = model(images)
    torch.nn.init.normal_(model.embed.weight)
    after = model(images)
    assert torch.equal(before.pose_canonical, after.pose_canonical)
    assert not torch.equal(before.embedding, after.embedding)
    with pytest.raises(ValueError, match="regress_from"):
        PoseNet(regress_from="pixels")


def test_antisymmetric_part_is_the_metrics_one() -> None:
    poses = np.random.default_rng(0).normal(size=(6, 17, 3))
    poses -= poses[:, :1]
    ours = antisymmetric_part(torch.from_numpy(poses)).numpy()
    assert np.allclose(ours, left_right_parts(poses)[1], atol=1e-12)


def test_facing_gate_adds_only_asymmetry_and_follows_the_facing() -> None:
    """facing_gate: the head's asymmetries are weighted by the body's front-back axis in
    camera coordinates, so turning the body around (180 degrees about its up axis, which
    negates that axis) negates them; the mirror-symmetric part stays the regressor's."""
    torch.manual_seed(0)
    model = PoseNet(embedding_dim=16, hidden_dim=32, facing_gate=True).eval()
    torch.nn.init.normal_(model.regressor[-1].weight, std=0.1)
    images = torch.rand(3, 3, 32, 32)
    plain = model(images)
    torch.nn.init.normal_(model.facing_head[-1].weight, std=0.1)
    gated = model(images)
    sym = [left_right_parts(o.pose_canonical.detach().double().numpy())[0] for o in (plain, gated)]
    anti = [left_right_parts(o.pose_canonical.detach().double().numpy())[1] for o in (plain, gated)]
    assert np.allclose(sym[0], sym[1], atol=1e-3)  # mm, float32
    assert np.abs(anti[0] - anti[1]).max() > 0.1  # pose_scale 1: raw outputs are mm
    turn = torch.diag(torch.tensor([-1.0, 1.0, -1.0]))  # about the body's up axis (y)
    asym = model._facing_asymmetry(gated.feature, gated.rotation)
    turned = model._facing_asymmetry(gated.feature, gated.rotation @ turn)
    assert torch.allclose(turned, -asym, atol=1e-6) and asym.abs().max() > 0
    with pytest.raises(ValueError, match="facing_gate"):
        PoseNet(pose_frame="camera", facing_gate=True)


def _stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return x.mean(dim=(2, 3)), (x.var(dim=(2, 3)) + 1e-6).sqrt()


def test_mixstyle_keeps_content_and_mixes_statistics_with_one_partner() -> None:
    """Each crop keeps its normalised feature map (the pose) and takes channel statistics
    that are one convex mix, a weight w in [0, 1] shared by every channel and by mean and
    std, of its own and one other crop's (the look)."""
    torch.manual_seed(3)
    x = torch.randn(6, 5, 8, 8, dtype=torch.float64) * (torch.rand(6, 5, 1, 1) + 0.5) * 3 + \
        torch.randn(6, 5, 1, 1) * 2
    mix = MixStyle(p=1.0, alpha=0.5).train()
    out = mix(x)
    mu, sigma = _stats(x)
    mu_out, sigma_out = _stats(out)
    content = (x - mu[..., None, None]) / sigma[..., None, None]
    assert torch.allclose((out - mu_out[..., None, None]) / sigma_out[..., None, None], content,
                          atol=1e-5)
    mixed = 0
    for i in range(len(x)):
        fits = []
        for j in range(len(x)):  # the partner may be the crop itself (a random permutation)
            w = ((mu_out[i] - mu[j]) / (mu[i] - mu[j])).mean()
            if (0 <= w <= 1 and torch.allclose(w * mu[i] + (1 - w) * mu[j], mu_out[i],
                                               atol=1e-6)
                    and torch.allclose(w * sigma[i] + (1 - w) * sigma[j], sigma_out[i],
                                       atol=1e-5)):
                fits.append(j)
        same = torch.allclose(out[i], x[i], atol=1e-6)
        assert fits or same, f"crop {i}: statistics are no mix of its own and another's"
        mixed += not same
    assert mixed >= 3  # with alpha 0.5 the weights are spread: most crops change look


def test_mixstyle_acts_only_in_training_and_adds_no_parameters() -> None:
    torch.manual_seed(0)
    x = torch.rand(4, 3, 32, 32)
    mixing = PoseNet(embedding_dim=16, hidden_dim=32, mixstyle=1.0)
    plain = PoseNet(embedding_dim=16, hidden_dim=32)
    assert set(mixing.state_dict()) == set(plain.state_dict())
    plain.load_state_dict(mixing.state_dict())
    mixing.eval(), plain.eval()
    assert torch.equal(mixing(x).embedding, plain(x).embedding)
    mixing.train(), plain.train()
    assert not torch.allclose(mixing(x).embedding, plain(x).embedding)
    assert torch.equal(MixStyle(p=0.0).train()(x), x)
    with pytest.raises(ValueError, match="MixStyle"):
        MixStyle(p=1.5)


def test_reversed_gradient_is_the_negated_gradient() -> None:
    x = torch.randn(5, 3, requires_grad=True)
    (reverse_gradient(x) * torch.arange(3.0)).sum().backward()
    assert torch.equal(reverse_gradient(x), x)
    assert torch.equal(x.grad, -torch.arange(3.0).expand(5, 3))


def test_actor_head_trains_against_the_embedding() -> None:
    """The discriminator's own weights descend its loss; the embedding layer gets the reversed
    gradient: one SGD step makes the head better and the embedding worse at telling apart."""
    torch.manual_seed(0)
    model = PoseNet(embedding_dim=8, hidden_dim=16, actor_head=True).eval()
    assert model(torch.rand(2, 3, 32, 32)).actor_logit.shape == (2,)
    embedding = torch.randn(16, 8)
    target = (torch.arange(16) < 8).float()
    embed = torch.nn.Linear(8, 8)

    def loss() -> torch.Tensor:
        logits = model.actor_head(reverse_gradient(embed(embedding))).squeeze(-1)
        return torch.nn.functional.binary_cross_entropy_with_logits(logits, target)

    loss().backward()
    head_grads = [p.grad.clone() for p in model.actor_head.parameters()]
    with torch.no_grad():  # descend only the head's loss: lower
        for p, g in zip(model.actor_head.parameters(), head_grads, strict=True):
            p -= 0.1 * g
        lower = loss().item()
        for p, g in zip(model.actor_head.parameters(), head_grads, strict=True):
            p += 0.1 * g
        before = loss().item()
        for p in embed.parameters():  # the embedding's (reversed) step: higher
            p -= 0.1 * p.grad
        higher = loss().item()
    assert lower < before < higher


def test_untrained_model_predicts_the_mean_pose_seen_from_the_mean_view() -> None:
    poses = torch.from_numpy(_poses(40)).float()
    model = PoseNet(embedding_dim=16, hidden_dim=32).eval()
    model.set_pose_statistics(poses)
    frames = torch.from_numpy(canonical_body_frame(poses.double().numpy())).float()
    model.set_view_statistics(frames.transpose(1, 2))
    out = model(torch.rand(2, 3, 32, 32))
    mean = poses - poses[:, :1]
    assert torch.allclose(out.pose_canonical[0], mean.mean(0), atol=1e-4)


def test_metrics_on_known_cases() -> None:
    gt = _poses(5)
    assert np.allclose(mpjpe(gt + 7.0, gt), 0)  # root-relative: translation is free
    assert np.allclose(n_mpjpe(gt * 1.3, gt), 0, atol=1e-9)
    angle = 0.7
    rot = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0],
                    [0, 0, 1]])
    assert np.allclose(pa_mpjpe(0.5 * gt @ rot.T + 3.0, gt), 0, atol=1e-9)
    shifted = gt.copy()
    shifted[:, 5] += [30.0, 40.0, 0.0]  # one joint 50 mm off
    assert np.allclose(mpjpe(shifted, gt), 50.0 / 17)
    assert np.allclose(to_canonical(gt @ rot.T), to_canonical(gt))


def test_collapsed_embedding_is_flagged() -> None:
    gt = _poses(64)
    healthy = {"pose_camera": gt + np.random.default_rng(1).normal(0, 20, gt.shape),
               "embedding": np.random.default_rng(2).normal(size=(64, 8))}
    healthy["pose_canonical"] = to_canonical(healthy["pose_camera"])
    assert collapse_warnings(pose_metrics(healthy, gt)) == []
    collapsed = {"embedding": np.ones((64, 8)) + np.random.default_rng(3).normal(0, 1e-3,
                                                                                  (64, 8)),
                 "pose_camera": np.broadcast_to(gt.mean(0), gt.shape).copy()}
    collapsed["pose_canonical"] = to_canonical(collapsed["pose_camera"])
    warnings = collapse_warnings(pose_metrics(collapsed, gt))
    assert len(warnings) == 2 and "collapse" in warnings[0] and "mean" in warnings[1]


def test_sanity_references_by_hand() -> None:
    labelled = _poses(3)
    refs = sanity_references(labelled, labelled)
    assert refs["oracle_mpjpe"] == pytest.approx(0.0, abs=0.1)  # each pose is its own nearest
    assert refs["mean_pose_mpjpe"] > 20.0


def test_init_loads_a_local_torchvision_state_dict(tmp_path) -> None:
    import torchvision
    from safetensors.torch import save_file

    from mcss.model import load_backbone_init

    torch.manual_seed(1)
    reference = torchvision.models.resnet18(weights=None)
    save_file({k: v.contiguous() for k, v in reference.state_dict().items()},
              tmp_path / "resnet18.safetensors")
    torch.save(reference.state_dict(), tmp_path / "resnet18.pth")
    for name in ("resnet18.safetensors", "resnet18.pth"):
        model = PoseNet(embedding_dim=16, hidden_dim=32)
        skipped = load_backbone_init(model, tmp_path / name)
        assert "conv1.weight" in skipped  # the small-crop stem differs from ImageNet's
        assert torch.equal(model.backbone.layer3[0].conv1.weight,
                           reference.layer3[0].conv1.weight)
    with pytest.raises(ValueError, match="backbone tensors"):
        load_backbone_init(PoseNet(arch="resnet50"), tmp_path / "resnet18.safetensors")
    with pytest.raises(FileNotFoundError, match="--init"):
        load_backbone_init(model, tmp_path / "missing.pth")
