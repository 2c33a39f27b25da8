"""The explorer in the browser: `uv run --extra app app.py [ckpt_path=...] [port=7860]`."""

import sys

import hydra
from omegaconf import DictConfig

from cvae_lightning.cli import exit_on_user_error
from cvae_lightning.overrides import check_overrides
from cvae_lightning.runs import register_resolvers


@hydra.main(version_base="1.3", config_path="conf", config_name="app")
def main(cfg: DictConfig) -> None:
    from cvae_lightning.explorer_app import serve

    exit_on_user_error(serve, cfg)


if __name__ == "__main__":
    register_resolvers()
    exit_on_user_error(check_overrides, "app", sys.argv[1:])  # a misspelt key: one line
    main()
