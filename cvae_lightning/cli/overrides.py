"""Command-line overrides checked before Hydra runs: a misspelt key gets one line naming the
closest valid key (Hydra's own answer is five lines advising `+key=...`, which then fails later
with a TypeError after making a run folder)."""

from __future__ import annotations

import difflib
import re

from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from cvae_lightning.errors import ConfigError
from cvae_lightning.paths import PROJECT_ROOT

# Overrides Hydra handles in ways a plain compose cannot try out: sweeps, Hydra's own keys,
# additions (+), deletions (~) and command-line flags.
CONF = PROJECT_ROOT / "conf"
SKIPPED = re.compile(r"^[+~-]|^hydra[./]|,|\b(glob|range|choice|interval|tag)\(")


def config_keys(node, prefix: str = "") -> list[str]:
    """Every dotted key of a config (a plain dict of it, interpolations left alone)."""
    keys = []
    for key, value in node.items():
        keys.append(f"{prefix}{key}")
        if isinstance(value, dict):
            keys += config_keys(value, f"{prefix}{key}.")
    return keys


def check_overrides(config_name: str, args: list[str]) -> None:
    """Raise ConfigError naming the closest valid key for an override of a key that does not
    exist in conf/<config_name>.yaml; anything Hydra should judge itself is left to it."""
    plain = [a for a in args if "=" in a and not SKIPPED.search(a)]
    if not plain or any(a in ("-m", "--multirun") for a in args):
        return
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        try:
            compose(config_name, overrides=plain)
            return
        except ConfigCompositionException as e:
            found = re.search(r"Could not override '([^']+)'", str(e))
            if not found or "is not in struct" not in f"{e} {e.__cause__}":
                return  # another problem: Hydra says it better
            key = found.group(1)
            groups = [a for a in plain if (CONF / a.split("=")[0]).is_dir()]  # data=folder
            cfg = compose(config_name, overrides=groups)
            known = config_keys(OmegaConf.to_container(cfg, resolve=False))
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]}?" if close else "see the keys with --cfg job"
    raise ConfigError(
        f"{key} is not a config key: {hint} (to add a new key on purpose, write +{key}=...)"
    )
