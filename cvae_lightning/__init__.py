"""cvae-lightning: a convolutional VAE for images (Lightning + Hydra).

From Python: `from cvae_lightning import load_pretrained` (see cvae_lightning.inference.pretrained).
"""

__all__ = ["PretrainedVAE", "load_pretrained"]


def __getattr__(name: str):
    # Imported on first use: the entry scripts and tools import submodules without paying for
    # the API's imports.
    if name in __all__:
        from cvae_lightning.inference import pretrained

        return getattr(pretrained, name)
    raise AttributeError(f"module 'cvae_lightning' has no attribute {name!r}")
