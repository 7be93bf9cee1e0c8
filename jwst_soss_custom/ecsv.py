"""Write numeric tables as ECSV quickly (the light curves); read one with a clear error.

astropy's ECSV writer formats every value with ``str(column[i])`` in Python
and joins the rows one by one: 1.5 s for the 75,000-row ``speclc`` of a full
exposure. Its fast C writer does the same lines in about half the time, so
`write_ecsv` takes the ECSV header from astropy's own writer (a zero-row
copy of the table) and the data lines from the C writer. Both print a value
the same way (the shortest repr, which reads back exactly), so the file is
the one astropy writes, byte for byte; tables the C writer cannot print
that way (strings, masked, multidimensional, other float types, mixins
other than `~astropy.units.Quantity`) are written by astropy's writer alone.
"""

import io

from astropy import units as u
from astropy.table import Column, Table

from jwst_soss_custom._base.atomic import atomic_path
from jwst_soss_custom._base.errors import SossInputError

__all__ = ["read_ecsv", "write_ecsv"]


def read_ecsv(path, what, error=SossInputError):
    """An ECSV table, or a one-line error naming the file and what was expected.

    Parameters
    ----------
    path : str or Path
    what : str
        What the file should be, for the message (``"a <product>_whtlt.ecsv
        from soss_tso3"``).
    error : type
        The exception raised (a `ValueError` subclass).

    Returns
    -------
    `~astropy.table.Table`
    """
    try:
        return Table.read(path, format="ascii.ecsv")
    except (ValueError, OSError, UnicodeDecodeError) as err:
        # astropy's InconsistentTableError is a ValueError.
        raise error(
            f"{path} is not an ECSV table ({type(err).__name__}: {str(err).splitlines()[0]}); "
            f"give {what}."
        ) from None


def _data_values(column):
    """Values of a column as its ECSV data lines hold them; None if the C writer can't."""
    if type(column) is u.Quantity:
        values = column.value  # ECSV stores a Quantity as its values, the unit in the header
    elif type(column) is Column:
        values = column.data
    else:
        return None
    kind, size = values.dtype.kind, values.dtype.itemsize
    if values.ndim == 1 and (kind in "biu" or (kind == "f" and size == 8)):
        return values
    return None


def write_ecsv(table, path):
    """Write a table as ECSV, identical to astropy's ``format="ascii.ecsv"``.

    Parameters
    ----------
    table : `~astropy.table.Table` or `~astropy.table.QTable`
        The table; it is not modified.
    path : str or Path
        The file, overwritten if it exists.
    """
    with atomic_path(path) as temporary:
        values = [_data_values(column) for column in table.itercols()]
        if len(table) == 0 or any(v is None for v in values):
            table.write(temporary, format="ascii.ecsv")
            return
        header = io.StringIO()
        table[:0].write(header, format="ascii.ecsv")
        data = Table(values, names=table.colnames, copy=False)  # no formats, units or meta
        with open(temporary, "w", newline="") as output:
            output.write(header.getvalue())
            data.write(output, format="ascii.fast_no_header", delimiter=" ",
                       fast_writer="force")
