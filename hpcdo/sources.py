"""Where a recipe's code comes from: a directory here (:class:`LocalTree`) or a Git repository.

Part of the recipe API; :mod:`hpcdo.recipe` exports both.
"""

import urllib.parse

from . import ConfigError


class LocalTree:
    """Source taken from a directory on this computer and synced to the machine.

    Uncommitted edits count: the content of the files decides what is stale.
    ``exclude`` adds fnmatch patterns (matched against each path component)
    to the defaults (version control, caches, object files).
    """

    kind = "local"

    def __init__(self, path, exclude=()):
        if not isinstance(path, str) or not path:
            raise ConfigError("LocalTree needs a directory path")
        self.path = path
        self.exclude = tuple(exclude)

    def describe(self):
        return "local tree %s" % self.path


class Git:
    """Source cloned on the machine itself from ``url`` at ``ref``.

    The commit that ``ref`` resolved to at clone time is recorded; pin a tag
    or a commit for reproducible runs (a branch is not re-resolved until the
    ``cold`` task or a change of ``ref``).
    """

    kind = "git"

    def __init__(self, url, ref="HEAD"):
        if not isinstance(url, str) or not url or url.startswith("-"):
            raise ConfigError("Git needs a repository URL")
        if not isinstance(ref, str) or not ref or ref.startswith("-"):
            raise ConfigError("Git ref must be a branch, tag or commit")
        self.url = url
        self.ref = ref

    def credentials(self):
        """(URL without user and password, user, password): an https URL's ``user:token@`` part apart.

        The user and password travel to git by its ``GIT_ASKPASS``, never on
        a command line another user of the login node can read; (url, None,
        None) when the URL carries none.
        """
        parts = urllib.parse.urlsplit(self.url)
        if parts.scheme not in ("http", "https") or "@" not in parts.netloc:
            return self.url, None, None
        userinfo, _, host = parts.netloc.rpartition("@")
        user, _, password = userinfo.partition(":")
        clean = urllib.parse.urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
        return clean, urllib.parse.unquote(user), urllib.parse.unquote(password)

    @property
    def public_url(self):
        """The URL as it may be shown and recorded: any password or token left out."""
        clean, user, password = self.credentials()
        if user is None:
            return self.url
        parts = urllib.parse.urlsplit(clean)
        return urllib.parse.urlunsplit((parts.scheme, "***@" + parts.netloc, parts.path, parts.query,
                                        parts.fragment))

    def describe(self):
        return "git %s @ %s" % (self.public_url, self.ref)
