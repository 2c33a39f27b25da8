"""Where z comes from once the VAE is trained: densities over its latent codes, one module each
(standard.py: N(0, I); gmm.py: Gaussian mixtures; flow.py: a normalising flow), one contract
for all (base.py: fit / sample / log_prob / state), and their files (store.py)."""

from cvae_lightning.densities.flow import Flow
from cvae_lightning.densities.gmm import GaussianMixture
from cvae_lightning.densities.standard import StandardNormal

# Each kind by the name its state records: what a densities file is read back with.
KINDS = {cls.kind: cls for cls in (StandardNormal, GaussianMixture, Flow)}
