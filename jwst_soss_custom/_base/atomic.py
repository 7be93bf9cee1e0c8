"""Write files so that a run stopped at any point leaves the whole file or none."""

import contextlib
import shutil
from pathlib import Path

__all__ = ["atomic_path"]


@contextlib.contextmanager
def atomic_path(path):
    """A temporary path to write ``path`` to; renamed to ``path`` when the block succeeds.

    The temporary file has the final name inside a hidden folder beside it
    (``.<name>.part/<name>``): stdatamodels writes the name it saves under
    into the file (FILENAME), which must be the final one. The rename is
    atomic on one file system, so a run killed at any point leaves either the
    complete file or none under its final name (and at most the hidden
    folder, removed by the next write of the same file).

    Parameters
    ----------
    path : str or Path
        Final file name.

    Yields
    ------
    Path
        Where to write.
    """
    path = Path(path)
    folder = path.with_name(f".{path.name}.part")
    if folder.exists():  # left by a run that was killed
        shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    try:
        yield folder / path.name
        (folder / path.name).replace(path)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
