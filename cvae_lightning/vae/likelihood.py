"""The decoder's likelihood p(x|z): a Gaussian around the decoded image, its variance fixed or
calibrated. One home for it: the training loss, the IWAE bound and eval.py's nats all use it.

- `fixed`: the reference. The loss is the summed squared error, which is -log N(x; x_rec, 1/2 I)
  up to the constant D/2 log(pi) (D values per image); `nats` adds it.
- `optimal`: the sigma-VAE's calibrated decoder (Rybkin et al. 2021, "Simple and Effective VAE
  Training with Calibrated Decoders"): one variance shared by every pixel, set to the batch's
  mean squared error while training (its maximum-likelihood value, so reconstruction and KL are
  balanced by the data instead of by the pixel scale), and to a running average of it in eval
  mode, so a test image's likelihood does not depend on its batch. The loss is in nats.
- `optimal_per_channel`: one such variance per colour channel.

Plain PyTorch; no host sync (the running average is updated in place, as BatchNorm's).
"""

from __future__ import annotations

import math

import torch
from torch import nn

KINDS = ("fixed", "optimal", "optimal_per_channel")
# sigma >= e^-6 ~ 0.0025: a batch reconstructed perfectly would otherwise drive log sigma, and
# the loss, to -infinity. (The paper clips softly to keep a gradient; this sigma is detached.)
LOG_SIGMA_MIN = -6.0
HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


class GaussianLikelihood(nn.Module):
    """-log p(x|z) of images x (B, C, H, W) given their decodings x_rec, summed over the batch
    (what the loss adds up) or per image (the IWAE bound).

    `kind` is one of KINDS; `momentum` is the weight of each training batch in the running log
    sigma read in eval mode. `fixed` holds no state: reference checkpoints load as they are.
    """

    def __init__(self, kind: str = "fixed", channels: int = 1, momentum: float = 0.1):
        super().__init__()
        if kind not in KINDS:
            raise ValueError(
                f"model.likelihood={kind!r} is invalid: choose one of {', '.join(KINDS)}"
            )
        self.kind, self.momentum = kind, momentum
        if kind != "fixed":
            shape = (1, channels if kind == "optimal_per_channel" else 1, 1, 1)
            self.register_buffer("log_sigma", torch.zeros(shape))

    @property
    def calibrated(self) -> bool:
        return self.kind != "fixed"

    def _log_sigma(self, err2: torch.Tensor) -> torch.Tensor:
        """The batch's optimal log sigma in training (and the running value updated), else the
        running value. Detached: at the optimum d(loss)/d(sigma) = 0, so the gradient with
        respect to the reconstruction is the same as through it."""
        if not self.training:
            return self.log_sigma
        dims = (0, 2, 3) if self.kind == "optimal_per_channel" else (0, 1, 2, 3)
        batch = (0.5 * err2.detach().mean(dims, keepdim=True).log()).clamp_min(LOG_SIGMA_MIN)
        with torch.no_grad():
            self.log_sigma.lerp_(batch, self.momentum)
        return batch

    def forward(
        self, x_rec: torch.Tensor, x: torch.Tensor, per_image: bool = False
    ) -> torch.Tensor:
        """-log p(x | x_rec) in the loss's units (fp32 even under autocast): the sum over the
        batch, or (B,) with `per_image`."""
        err2 = (x_rec.float() - x.float()).pow(2)
        if self.calibrated:
            log_sigma = self._log_sigma(err2)
            err2 = 0.5 * err2 * torch.exp(-2 * log_sigma) + log_sigma + HALF_LOG_2PI
        return err2.flatten(1).sum(1) if per_image else err2.sum()

    def constant(self, values: int) -> float:
        """What turns the per-image loss into nats for an image of `values` pixels x channels:
        D/2 log(pi) for `fixed` (the summed squared error leaves it out), 0 otherwise."""
        return 0.0 if self.calibrated else 0.5 * values * math.log(math.pi)

    def sigma(self) -> torch.Tensor:
        """The running sigma (one value, or one per channel), on the device; ones for `fixed`."""
        if not self.calibrated:
            return torch.ones(1)
        return self.log_sigma.exp().flatten()
