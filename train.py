"""Train the CVAE: `uv run train.py [key=value ...]` (see conf/ and docs/training.md)."""

import hydra
from omegaconf import DictConfig

from cvae_lightning.cli.main import prepare, train_command


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    return train_command(cfg)  # sweepers (Optuna, ...) optimise what main returns


if __name__ == "__main__":
    prepare("train", resume=True)  # a misspelt key: one line; ckpt_path=last: the newest run
    main()
