"""hpcdo: Make-style deployment of HPC simulation codes.

A project describes its machines in YAML (``machines/``) and its codes in
small Python recipes (``recipes/``); ``dodo.py`` turns both into doit tasks
that rerun only the steps that are stale on the chosen machine.
"""

__version__ = "0.1.0"


class HpcdoError(Exception):
    """An error the user can act on: reported as one line, never a traceback."""


class ConfigError(HpcdoError):
    """A machine file, recipe or command-line value is wrong."""


class RemoteError(HpcdoError):
    """A remote command or transfer failed, or the connection could not be made."""
