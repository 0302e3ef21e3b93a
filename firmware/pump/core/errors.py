"""Errors the core raises when a request or a configuration is not acceptable."""


class Refused(ValueError):
    """A therapy request refused with a reason a person can read; nothing was changed."""


class ConfigError(ValueError):
    """A board or settings value that cannot be used; the message names the field."""


def fmt_units(mu):
    """Milliunits as insulin units with two decimals, for messages: 2500 -> '2.50 U'."""
    sign = "-" if mu < 0 else ""
    mu = abs(mu)
    return "%s%d.%02d U" % (sign, mu // 1000, (mu % 1000) // 10)


def fmt_rate(mu_per_h):
    """A basal rate in milliunits per hour as 'U/h' text with two decimals."""
    return fmt_units(mu_per_h) + "/h"
