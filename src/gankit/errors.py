"""The one error type a user sees: a mistake in their config, data or command line.

The CLI prints ``GankitError`` as one line and exits with code 2; anything else is a bug in gankit
and keeps its traceback.
"""


class GankitError(Exception):
    """A user mistake, with a message that names the file/key/value and what was expected."""


class TrainingDiverged(GankitError):
    """A loss became NaN or Inf; the last good checkpoint is kept."""
