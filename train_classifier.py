"""Train the evaluation classifier of a labelled dataset: `uv run train_classifier.py [data=...]`
-> weights/<dataset>_classifier.pt (MNIST: weights/mnist_classifier.pt)."""

import sys

import hydra
from omegaconf import DictConfig

from cvae_lightning.classifier_training import fit_classifier
from cvae_lightning.cli import exit_on_user_error
from cvae_lightning.overrides import check_overrides
from cvae_lightning.runs import register_resolvers


@hydra.main(version_base="1.3", config_path="conf", config_name="classifier")
def main(cfg: DictConfig) -> None:
    exit_on_user_error(fit_classifier, cfg)


if __name__ == "__main__":
    register_resolvers()
    exit_on_user_error(check_overrides, "classifier", sys.argv[1:])  # a misspelt key: one line
    main()
