"""Print a white-light precision summary of a ``whtlt`` product.

Usage: ``python -m jwst_soss_custom.report <product>_whtlt.ecsv``
"""

import argparse
import re
import sys
from pathlib import Path

from astropy.table import Table

from jwst_soss_custom.lightcurves.precision import precision_ratio

__all__ = ["main", "whitelight_precision"]


def whitelight_precision(table):
    """Precision of each order's normalised white light.

    Parameters
    ----------
    table : `~astropy.table.Table`
        A ``whtlt`` table written by soss_tso3.

    Returns
    -------
    dict of int to (float, float, float)
        Per order: measured scatter (ppm), photon+read-noise expectation (ppm)
        and their ratio.
    """
    result = {}
    for name in table.colnames:
        match = re.fullmatch(r"whitelight_flux_norm_order_(\d+)", name)
        if match:
            order = int(match.group(1))
            error = table[f"whitelight_flux_norm_error_order_{order}"]
            measured, expected, ratio = precision_ratio(
                table[name].value if hasattr(table[name], "value") else table[name],
                error.value if hasattr(error, "value") else error,
            )
            result[order] = (1e6 * measured, 1e6 * expected, ratio)
    return result


def main(argv=None):
    """Command-line entry: print where the products are and the precision."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("whtlt", type=Path, help="a <product>_whtlt.ecsv written by soss_tso3")
    args = parser.parse_args(argv)
    if not args.whtlt.exists():
        parser.error(f"{args.whtlt} does not exist; run soss_tso3 first.")
    table = Table.read(args.whtlt)
    folder = args.whtlt.parent
    print(f"Products in {folder.resolve()}:")
    for path in sorted(folder.iterdir()):
        print(f"  {path.name}")
    print(f"White-light precision ({len(table)} integrations, point-to-point estimator):")
    for order, (measured, expected, ratio) in sorted(whitelight_precision(table).items()):
        print(
            f"  order {order}: measured {measured:7.1f} ppm   photon+read noise "
            f"{expected:7.1f} ppm   ratio {ratio:5.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
