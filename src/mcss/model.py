"""The network: CNN backbone, embedding head, pose regressor and view head.

Pose frames (DESIGN.md section 1): the multi-view loss makes the embedding the same for every
camera, so a regressor reading only the embedding can predict the pose in the **canonical
body frame** (:func:`mcss.geometry.canonical_body_frame`) but not in the camera frame. A
separate *view head* on the backbone feature predicts the body-to-camera rotation (6D
representation, Gram-Schmidt to a matrix); camera-frame pose = rotation @ canonical pose.
``pose_frame="camera"`` keeps the naive variant (the regressor predicts camera-frame pose
from the embedding) as an ablation.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torchvision
from torch import nn
from torch.nn import functional as F

from mcss.skeleton import FLIP_PERMUTATION, NUM_JOINTS

if TYPE_CHECKING:
    from mcss.config import TrainConfig

ARCHS = ("resnet18", "resnet34", "resnet50")
IMAGE_MEAN = (0.485, 0.456, 0.406)
IMAGE_STD = (0.229, 0.224, 0.225)


@dataclass
class PoseOutput:
    """Network outputs for a batch of B crops (poses root-relative, mm)."""

    feature: torch.Tensor  # (B, F) backbone feature
    embedding: torch.Tensor  # (B, D) not normalised; the metric loss normalises it
    pose_camera: torch.Tensor  # (B, 17, 3) camera frame
    pose_canonical: torch.Tensor | None  # (B, 17, 3) body frame (None for pose_frame=camera)
    rotation: torch.Tensor | None  # (B, 3, 3) body -> camera
    actor_logit: torch.Tensor | None = None  # (B,) labelled-actor discriminator (adversary)


def rotation_6d_to_matrix(x: torch.Tensor) -> torch.Tensor:
    """Zhou et al.'s continuous 6D rotation representation to matrices ``(..., 3, 3)``:
    the two 3-vectors are made orthonormal by Gram-Schmidt; they are the first two columns."""
    a, b = x[..., :3], x[..., 3:]
    c1 = F.normalize(a, dim=-1)
    c2 = F.normalize(b - (c1 * b).sum(-1, keepdim=True) * c1, dim=-1)
    c3 = torch.cross(c1, c2, dim=-1)
    return torch.stack([c1, c2, c3], dim=-1)


def small_crop_backbone(arch: str) -> tuple[nn.Module, int]:
    """A torchvision ResNet (random init) adapted to 64-128 px crops.

    torchvision's stem is a 7x7 stride-2 convolution and a max-pool, designed for 224 px
    images: on a 64 px crop its 7x7 kernel spans a whole forearm (3-4 px wide) and blurs it
    into the background. mcss uses a 3x3 stride-2 convolution, keeping the max-pool: the
    same 4x downsampling and cost (removing the max-pool instead made training 3x slower on
    a 2-core CPU for no gain in the quick preset), with a kernel sized to thin limbs.
    """
    if arch not in ARCHS:
        raise ValueError(f"unknown backbone {arch!r}; choose one of {', '.join(ARCHS)}")
    net = getattr(torchvision.models, arch)(weights=None)
    net.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=2, padding=1, bias=False)
    feature_dim = net.fc.in_features
    net.fc = nn.Identity()
    return net, feature_dim


class _ReverseGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return -grad


def reverse_gradient(x: torch.Tensor) -> torch.Tensor:
    """Identity forward, negated gradient backward (Ganin and Lempitsky's gradient reversal):
    a head behind it learns to tell inputs apart while its input learns to hide the difference."""
    return _ReverseGradient.apply(x)


class MixStyle(nn.Module):
    """Appearance mixing between crops (MixStyle, Zhou et al., ICLR 2021), in training only.

    With probability ``p`` per batch, each crop's feature maps are renormalised to a mix of its
    own channel statistics (mean and std over space, which carry colour and texture) and
    those of a random other crop of the batch, with a Beta(``alpha``, ``alpha``) weight. With one
    labelled actor, its crops then take on the look of the unlabelled actors in the batch,
    so the network cannot read the pose off S1's clothes. No parameters: checkpoints are
    unchanged, and evaluation is unaffected.
    """

    def __init__(self, p: float = 0.5, alpha: float = 0.1, eps: float = 1e-6) -> None:
        super().__init__()
        if not 0 <= p <= 1 or alpha <= 0:
            raise ValueError(f"MixStyle needs 0 <= p <= 1 and alpha > 0; got p={p}, "
                             f"alpha={alpha}")
        self.p, self.alpha, self.eps = p, alpha, eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0 or len(x) < 2 or torch.rand(()) >= self.p:
            return x
        mu = x.mean(dim=(2, 3), keepdim=True)
        sigma = (x.var(dim=(2, 3), keepdim=True) + self.eps).sqrt()
        mu, sigma = mu.detach(), sigma.detach()
        weight = torch.distributions.Beta(self.alpha, self.alpha).sample((len(x), 1, 1, 1))
        partner = torch.randperm(len(x))
        weight = weight.to(x)
        mu_mix = weight * mu + (1 - weight) * mu[partner]
        sigma_mix = weight * sigma + (1 - weight) * sigma[partner]
        return (x - mu) / sigma * sigma_mix + mu_mix


def add_mixstyle(backbone: nn.Module, p: float, layers: tuple[str, ...] = ("layer1", "layer2"),
                 ) -> None:
    """Mix appearance after the given ResNet stages (forward hooks, so the state dict keeps
    torchvision's keys). ``p = 0`` adds nothing."""
    if p == 0:
        return
    for name in layers:
        mix = MixStyle(p)
        backbone.add_module(f"mixstyle_{name}", mix)
        getattr(backbone, name).register_forward_hook(lambda _m, _i, out, mix=mix: mix(out))


def antisymmetric_part(pose: torch.Tensor) -> torch.Tensor:
    """The part of canonical-frame poses ``(..., 17, 3)`` that their mirror image negates
    (:func:`mcss.metrics.left_right_parts`, in torch): which arm is raised, which leg leads."""
    mirrored = pose[..., FLIP_PERMUTATION, :] * pose.new_tensor([-1.0, 1.0, 1.0])
    return (pose - mirrored) / 2


def _mlp(n_in: int, hidden: int, n_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(n_in, hidden), nn.ReLU(inplace=True),
        nn.Linear(hidden, hidden), nn.ReLU(inplace=True),
        nn.Linear(hidden, n_out),
    )


class PoseNet(nn.Module):
    """Crop -> feature -> embedding -> pose; feature -> view rotation.

    Poses are predicted normalised and mapped back to mm with the buffers ``pose_mean``
    (the mean labelled pose, so an untrained network predicts the mean pose) and
    ``pose_scale`` (their spread); set them with :meth:`set_pose_statistics`.
    """

    def __init__(
        self,
        arch: str = "resnet18",
        embedding_dim: int = 128,
        hidden_dim: int = 256,
        pose_frame: str = "canonical",
        regress_from: str = "embedding",
        mixstyle: float = 0.0,
        actor_head: bool = False,
        facing_gate: bool = False,
    ) -> None:
        super().__init__()
        if pose_frame not in ("canonical", "camera"):
            raise ValueError(f"pose_frame must be 'canonical' or 'camera', not {pose_frame!r}")
        if facing_gate and pose_frame != "canonical":
            raise ValueError("facing_gate needs the view head (pose_frame='canonical')")
        if regress_from not in ("embedding", "feature"):
            raise ValueError(f"regress_from must be 'embedding' or 'feature', not "
                             f"{regress_from!r}")
        self.pose_frame, self.regress_from = pose_frame, regress_from
        self.backbone, feature_dim = small_crop_backbone(arch)
        add_mixstyle(self.backbone, mixstyle)
        self.embed = nn.Linear(feature_dim, embedding_dim)
        regressor_in = embedding_dim if regress_from == "embedding" else feature_dim
        self.regressor = _mlp(regressor_in, hidden_dim, NUM_JOINTS * 3)
        self.view_head = _mlp(feature_dim, hidden_dim, 6) if pose_frame == "canonical" else None
        # tells the labelled actor's embeddings from the others' through a gradient reversal
        self.actor_head = _mlp(embedding_dim, hidden_dim, 1) if actor_head else None
        # three left-right asymmetries, weighted by the body's facing (see _facing_asymmetry)
        self.facing_head = (_mlp(feature_dim, hidden_dim, 3 * NUM_JOINTS * 3) if facing_gate
                            else None)
        self.register_buffer("image_mean", torch.tensor(IMAGE_MEAN).view(1, 3, 1, 1))
        self.register_buffer("image_std", torch.tensor(IMAGE_STD).view(1, 3, 1, 1))
        self.register_buffer("pose_mean", torch.zeros(NUM_JOINTS, 3))
        self.register_buffer("pose_scale", torch.ones(()))
        if self.view_head is not None:  # start at the identity rotation
            last = self.view_head[-1]
            nn.init.zeros_(last.weight)
            with torch.no_grad():
                last.bias.copy_(torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]))
        for head in (self.regressor, self.facing_head):  # start at the mean pose
            if head is not None:
                nn.init.zeros_(head[-1].weight)
                nn.init.zeros_(head[-1].bias)

    def set_pose_statistics(self, poses_mm: torch.Tensor) -> None:
        """Normalise outputs by the labelled poses ``(N, 17, 3)`` of the regressor's frame."""
        centred = poses_mm - poses_mm[:, :1]
        self.pose_mean.copy_(centred.mean(0))
        self.pose_scale.copy_((centred - self.pose_mean).norm(dim=-1).mean().clamp_min(1.0))

    def set_view_statistics(self, rotations: torch.Tensor) -> None:
        """Start the view head at the mean labelled body-to-camera rotation ``(N, 3, 3)``
        (projected onto SO(3)), not at the identity, which shows the body upside down."""
        if self.view_head is None:
            return
        u, _, vh = torch.linalg.svd(rotations.double().mean(0))
        mean = u @ torch.diag(torch.tensor([1.0, 1.0, torch.linalg.det(u @ vh).item()],
                                           dtype=torch.float64)) @ vh
        with torch.no_grad():
            self.view_head[-1].bias.copy_(torch.cat([mean[:, 0], mean[:, 1]]).float())

    def forward(self, images: torch.Tensor) -> PoseOutput:
        """``images``: ``(B, 3, H, W)`` float in [0, 1]."""
        feature = self.backbone((images - self.image_mean) / self.image_std)
        embedding = self.embed(feature)
        raw = self.regressor(embedding if self.regress_from == "embedding" else feature)
        raw = raw.view(-1, NUM_JOINTS, 3)
        actor = (None if self.actor_head is None
                 else self.actor_head(reverse_gradient(embedding)).squeeze(-1))
        if self.view_head is None:
            return PoseOutput(feature, embedding, self._to_mm(raw), None, None, actor)
        rotation = rotation_6d_to_matrix(self.view_head(feature))
        if self.facing_head is not None:
            raw = raw + self._facing_asymmetry(feature, rotation)
        pose = self._to_mm(raw)
        pose_camera = pose @ rotation.transpose(1, 2)
        return PoseOutput(feature, embedding, pose_camera, pose, rotation, actor)

    def _to_mm(self, raw: torch.Tensor) -> torch.Tensor:
        pose = raw * self.pose_scale + self.pose_mean
        return pose - pose[:, :1]

    def _facing_asymmetry(self, feature: torch.Tensor, rotation: torch.Tensor) -> torch.Tensor:
        """Which limb is the body's left one depends on the facing *and* the image side of the
        limb (seen from behind, a raised left arm is on the image's left; from the front, on
        its right): a product a regressor learns slowly. Here the product is built in: the
        head reads three asymmetries off the image, and the body's front-back axis in camera
        coordinates (the view head's rotation, third column: the canonical ``z``, out of the
        back) weights them. Only the antisymmetric part is added, so the mirror-symmetric
        pose stays the regressor's."""
        bases = self.facing_head(feature).view(-1, 3, NUM_JOINTS, 3)
        weighted = torch.einsum("bk,bkjc->bjc", rotation[:, :, 2], bases)
        return antisymmetric_part(weighted)


def load_backbone_init(model: PoseNet, path: Path) -> list[str]:
    """Load a local torchvision state dict (``.safetensors``, or ``.pth`` read with
    ``weights_only=True``) into the backbone; returns the keys it skipped (the adapted stem
    and the classifier do not match ImageNet weights)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--init {path}: no such file (a torchvision state dict)")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(path)
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
    own = model.backbone.state_dict()
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if len(usable) < len(own) // 2:
        raise ValueError(f"--init {path}: only {len(usable)} of {len(own)} backbone tensors "
                         "match; is it a torchvision ResNet state dict of the same depth?")
    model.backbone.load_state_dict(usable, strict=False)
    return sorted(set(own) - set(usable))


def build_model(cfg: TrainConfig) -> PoseNet:
    """The network a training config describes."""
    return PoseNet(cfg.arch, cfg.embedding_dim, cfg.hidden_dim, cfg.pose_frame, cfg.regress_from,
                   cfg.mixstyle, actor_head=cfg.adversary > 0, facing_gate=cfg.facing_gate)
