"""Files the bot writes hold people's data (the database, briefs, exports, backups): owner only.

`dongxian` sets its umask to 077 at start, and these helpers also set the mode
explicitly, so a file is 0600 and a directory the bot creates 0700 whatever umask
the service manager or a test started it with.
"""
from __future__ import annotations

import os
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700


def private_dir(path: Path | str) -> Path:
    """Create the directory (and missing parents) 0700; an existing directory is left as it is."""
    path = Path(path)
    missing = []
    p = path
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        try:
            d.mkdir(mode=DIR_MODE)
        except FileExistsError:
            continue
        os.chmod(d, DIR_MODE)  # mkdir's mode is filtered by the umask
    return path


def private_file(path: Path | str) -> Path:
    """Make an existing file owner-only."""
    os.chmod(path, FILE_MODE)
    return Path(path)


def create_private(path: Path | str) -> Path:
    """Create (or truncate) a file as 0600 before anything is written to it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    os.close(fd)
    return private_file(path)
