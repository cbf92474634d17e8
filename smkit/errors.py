"""The one base class of smkit's own errors: `except smkit.SmkitError` catches every one of them.

It derives from ValueError because the errors it replaced did: `except ValueError` keeps working."""


class SmkitError(ValueError):
    """A bad input, option, file or notebook parameter; the message names it and says what is allowed."""
