"""Names of temporary files that say who made them, so leftovers can be told apart.

A temporary or backup file for ``NAME`` is ``.NAME.HOST-PID-RANDOM.SUFFIX`` in the
same folder. A run killed outright (SIGKILL, a power cut) cannot remove its
files; the next run for the same ``NAME`` removes those whose process, on this
host, no longer runs.
"""

# License: BSD-3-Clause

import os
import re
import secrets
import socket
from pathlib import Path

HOST = re.sub(r"[^A-Za-z0-9_]", "_", socket.gethostname())[:32] or "host"


def owned_name(folder, name, suffix):
    """A fresh temporary name for `name` in `folder`, owned by this process."""
    return Path(folder) / f".{Path(name).name}.{HOST}-{os.getpid()}-{secrets.token_hex(4)}.{suffix}"


def _is_running(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process, or no way to tell: leave its files
        return True
    return True


def remove_stale(folder, name, suffix):
    """Remove the `suffix` files for `name` in `folder` left by dead processes of this host.

    Returns the names removed.
    """
    pattern = re.compile(
        rf"^\.{re.escape(Path(name).name)}\.{re.escape(HOST)}-(\d+)-[0-9a-f]+\.{re.escape(suffix)}$"
    )
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = pattern.match(entry.name)
        if match and not _is_running(int(match.group(1))):
            try:
                os.unlink(entry.path)
                removed.append(entry.name)
            except OSError:
                pass
    return removed
