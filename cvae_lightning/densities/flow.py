"""A masked autoregressive flow (zuko) trained by maximum likelihood on the codes, the class as
its context for a conditional model."""

from __future__ import annotations

import torch

from cvae_lightning.densities.base import Codes, Fitter, bind, require, rows


class Flow:
    """A masked autoregressive flow (zuko.flows.MAF) over standardised codes.

    The codes are shifted and scaled to zero mean and unit spread first, so one learning rate
    suits any model; log_prob undoes that scaling, so it stays a density over z.
    """

    kind = "flow"

    def __init__(self, latent, num_classes, transforms, hidden, shift, scale, weights=None):
        import zuko

        self.latent, self.num_classes = latent, num_classes
        self.transforms, self.hidden = transforms, [int(h) for h in hidden]
        self.shift, self.scale = shift, scale
        self.flow = zuko.flows.MAF(
            latent, num_classes, transforms=transforms, hidden_features=tuple(self.hidden)
        )
        if weights is not None:
            self.flow.load_state_dict(weights)
        self.flow.eval().requires_grad_(False)

    def _context(self, y: torch.Tensor | None, n: int) -> torch.Tensor | None:
        if not self.num_classes:
            return None
        return torch.nn.functional.one_hot(rows(y, n), self.num_classes).float()

    @classmethod
    def fitter(
        cls, transforms: int = 3, hidden: tuple[int, ...] = (64, 64), steps: int = 2000,
        batch_size: int = 512, lr: float = 1e-3, seed: int = 0,
    ) -> Fitter:  # fmt: skip
        """`fit` with these settings, checked now: a bad value stops a run before it trains."""
        counts = {"transforms": transforms, "steps": steps, "batch_size": batch_size}
        require({**counts, "lr": lr}, dict.fromkeys(counts, 1), {"lr": 0})
        return bind(cls.fit, transforms=transforms, hidden=tuple(hidden), steps=steps,
                    batch_size=batch_size, lr=lr, seed=seed)  # fmt: skip

    @classmethod
    def fit(
        cls,
        codes: Codes,
        transforms: int = 3,
        hidden: tuple[int, ...] = (64, 64),
        steps: int = 2000,
        batch_size: int = 512,
        lr: float = 1e-3,
        seed: int = 0,
    ):
        """Maximum likelihood with Adam on random batches of the codes (cosine-decayed lr)."""
        z = codes.z.cpu().float()
        shift, scale = z.mean(0), z.std(0).clamp_min(1e-6)
        with torch.random.fork_rng():
            torch.manual_seed(seed)  # the MADE layers' initial weights
            density = cls(z.shape[1], codes.num_classes, transforms, hidden, shift, scale)
        flow, x = density.flow.train().requires_grad_(True), (z - shift) / scale
        context = density._context(codes.y, len(z))
        g = torch.Generator().manual_seed(seed)
        opt = torch.optim.Adam(flow.parameters(), lr=lr)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
        with torch.enable_grad():  # callers may be inside no_grad (evaluation)
            for _ in range(steps):
                idx = torch.randint(len(x), (batch_size,), generator=g)
                dist = flow(None if context is None else context[idx])
                loss = -dist.log_prob(x[idx]).mean()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
        flow.eval().requires_grad_(False)
        return density

    @torch.no_grad()
    def sample(self, n, y=None, temperature=1.0, generator=None) -> torch.Tensor:
        """Base draws eps ~ N(0, temperature^2 I) pushed through the inverse flow."""
        eps = torch.randn(n, self.latent, generator=generator) * temperature
        dist = self.flow(self._context(y, n))
        return self.shift + self.scale * dist.transform.inv(eps)

    @torch.no_grad()
    def log_prob(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        x = (z.cpu().float() - self.shift) / self.scale
        return self.flow(self._context(y, len(z))).log_prob(x) - self.scale.log().sum()

    def state(self) -> dict:
        return {
            "kind": self.kind, "latent": self.latent, "num_classes": self.num_classes,
            "transforms": self.transforms, "hidden": self.hidden, "shift": self.shift,
            "scale": self.scale, "weights": dict(self.flow.state_dict()),
        }  # fmt: skip

    @classmethod
    def from_state(cls, s: dict):
        # The MADE layers are initialised, then overwritten by the saved weights: reading a
        # file must not move torch's global generator (what the ELBO's draws come from).
        with torch.random.fork_rng():
            return cls(
                s["latent"], s["num_classes"], s["transforms"], s["hidden"], s["shift"],
                s["scale"], s["weights"],
            )  # fmt: skip
