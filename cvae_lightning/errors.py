"""Problems the user can act on. Each message names the key or file and the fix; the entry
scripts print it as one line and exit with the class's code, never a traceback."""


class UserError(Exception):
    """Base of every user-facing error; `exit_code` is what the entry script exits with."""

    exit_code = 2


class ConfigError(UserError, ValueError):
    """A config value the user must change; the message says which and to what."""


def require(ok: bool, key: str, value, allowed: str) -> None:
    """Refuse a config value in the one line every check uses: the key, the value, what is
    allowed."""
    if not ok:
        raise ConfigError(f"{key}={value!r} is invalid: {allowed}")


class DatasetError(UserError):
    """A dataset problem the user can fix; the message names the file and the fix."""


class CheckpointError(UserError):
    """A checkpoint that cannot be used here; the message names the file and the fix."""


class ClassifierError(UserError):
    """Classifier weights that cannot be used; the message names the file and the fix."""


class DensityFileError(UserError):
    """A latent-density file that is corrupt, foreign, or fitted for another model."""


class NonFiniteLossError(UserError):
    """The loss became NaN or infinite; the message names the step and the last good checkpoint."""

    exit_code = 1


class AccuracyTooLowError(UserError):
    """The trained classifier missed min_accuracy; the old weights file was kept."""

    exit_code = 1


class DiskFullError(UserError):
    """A file could not be written (no space, no permission); the previous one is intact."""

    exit_code = 1


class ExportError(UserError):
    """An exported graph that does not compute what the model does; nothing was kept."""

    exit_code = 1


class Interrupted(UserError):
    """Ctrl-C stopped training; the message names the saved checkpoint and how to resume."""

    exit_code = 130  # what shells report for a process ended by SIGINT
