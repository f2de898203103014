"""Converters from real data (Human3.6M, MPI-INF-3DHP, a user's own footage) to the mcss format.

Each converter reads its source, validates it, and writes one dataset folder with
:class:`mcss.data.format.DatasetWriter`, so ``mcss train``, ``eval`` and ``retrieve`` run on it
unchanged.
"""

from mcss.data.format import DatasetError


class ConvertError(DatasetError):
    """Input a converter cannot use; the message names the file and the fix."""
