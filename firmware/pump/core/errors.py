"""Errors the core raises when a request or a configuration is not acceptable."""


class Refused(ValueError):
    """A therapy request refused with a reason a person can read; nothing was changed."""


class ConfigError(ValueError):
    """A board or settings value that cannot be used; the message names the field."""

