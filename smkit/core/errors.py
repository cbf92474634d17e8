"""smkit's errors, all in one family: `except smkit.SmkitError` catches every error a user can cause.

SmkitError derives from ValueError because the errors it replaced did: `except ValueError` keeps working. Each
subclass names the kind of input that was wrong; every message names the parameter, file or value and what is
allowed."""


class SmkitError(ValueError):
    """A bad input, option, file or notebook parameter; the message names it and says what is allowed."""


class ConfigError(SmkitError):
    """A setting (a config field, a keyword argument) with a value that is not allowed."""


class DataError(SmkitError):
    """A corpus or tokenizer that cannot be used."""


class CheckpointError(SmkitError):
    """A path that is not a complete, uncorrupted model file or folder in a format smkit reads."""


class DenoiserError(SmkitError):
    """A model, tokenizer or option that cannot make an SM denoiser."""


class AdapterError(SmkitError):
    """A bad adapter option, or an adapter that does not fit its base."""


class UnsafePickleError(CheckpointError):
    """A pickle that would call code smkit does not allow; the load stopped before the call."""


class TaskError(ConfigError):
    """A task that cannot be built or used as asked."""


class TraceError(SmkitError):
    """A trace file or trace request that cannot be served (truncated file, unknown format, step out of range)."""


class TraceStepError(TraceError, IndexError):
    """A step (or sample) index outside a trace; also an IndexError, as for any sequence."""


class ParameterError(SmkitError):
    """A notebook parameter with a bad value."""


class JudgeError(SmkitError, RuntimeError):
    """A judge that cannot be found or loaded."""
