"""Errors that srlab reports to the user as one line instead of a traceback."""


class SRLabError(Exception):
    """A user-facing problem (bad input, bad config, unsafe file) with a one-line message."""


class ConfigError(SRLabError):
    """An invalid configuration value; the message names the key."""
