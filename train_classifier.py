"""Train the evaluation classifier of a labelled dataset: `uv run train_classifier.py [data=...]`
-> weights/<dataset>_classifier.pt (MNIST: weights/mnist_classifier.pt)."""

import hydra
from omegaconf import DictConfig

from cvae_lightning.cli.main import exit_on_user_error, prepare
from cvae_lightning.evaluation.train_classifier import fit_classifier


@hydra.main(version_base="1.3", config_path="conf", config_name="classifier")
def main(cfg: DictConfig) -> None:
    exit_on_user_error(fit_classifier, cfg)


if __name__ == "__main__":
    prepare("classifier")
    main()
