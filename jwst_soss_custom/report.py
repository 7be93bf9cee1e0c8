"""Print a precision summary of the Stage 3 products.

Usage: ``python -m jwst_soss_custom.report <product>_whtlt.ecsv``

It lists the product folder, then the white-light precision of each order
and, when ``<product>_precision.ecsv`` is beside the white light, the median
ratio over the spectroscopic channels.
"""

import argparse
import re
import sys
from pathlib import Path

import numpy as np
from astropy.table import Table

from jwst_soss_custom.lightcurves.precision import precision_ratio

__all__ = ["main", "whitelight_precision"]


def _values(column):
    return np.asarray(getattr(column, "value", column), dtype=np.float64)


def whitelight_precision(table):
    """Precision of each order's normalised white light, on its baseline.

    Parameters
    ----------
    table : `~astropy.table.Table`
        A ``whtlt`` table written by soss_tso3 (all rows are used when it has
        no ``baseline`` column).

    Returns
    -------
    dict of int to (float, float, float)
        Per order: measured scatter (ppm), photon+read-noise expectation (ppm)
        and their ratio.
    """
    rows = np.asarray(table["baseline"], bool) if "baseline" in table.colnames else slice(None)
    result = {}
    for name in table.colnames:
        match = re.fullmatch(r"whitelight_flux_norm(?:_order_(\d+))?", name)
        if match:
            order = int(match.group(1) or 1)
            error = table[name.replace("_norm", "_norm_error")]
            measured, expected, ratio = precision_ratio(
                _values(table[name])[rows], _values(error)[rows]
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
    nbase = table.meta.get("number_of_baseline_integrations", len(table))
    print(
        f"White-light precision ({len(table)} integrations, {nbase} baseline, "
        "point-to-point estimator):"
    )
    for order, (measured, expected, ratio) in sorted(whitelight_precision(table).items()):
        print(
            f"  order {order}: measured {measured:7.1f} ppm   photon+read noise "
            f"{expected:7.1f} ppm   ratio {ratio:5.2f}"
        )
    precision_file = args.whtlt.with_name(args.whtlt.name.replace("_whtlt.ecsv", "_precision.ecsv"))
    if precision_file != args.whtlt and precision_file.exists():
        precision = Table.read(precision_file)
        print(f"Spectroscopic channels ({precision_file.name}):")
        for order in np.unique(precision["order"]):
            ratio = _values(
                precision["ratio"][(precision["order"] == order) & (precision["bin"] >= 0)]
            )
            ratio = ratio[np.isfinite(ratio)]
            if ratio.size:
                print(
                    f"  order {order}: {ratio.size} channels, measured / expected median "
                    f"{np.median(ratio):4.2f} (16-84%: {np.percentile(ratio, 16):4.2f}-"
                    f"{np.percentile(ratio, 84):4.2f})"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
