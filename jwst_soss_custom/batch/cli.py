"""``soss_batch INPUT_DIR [INPUT_DIR ...] --output-dir OUT``: the command line of `run_batch`."""

import argparse
import importlib
import logging
import sys

from jwst_soss_custom._base.errors import SossInputError
from jwst_soss_custom.batch.runner import SUMMARY_NAME, run_batch

__all__ = ["main"]

#: Columns printed at the end (the file has them all).
SHOWN = ("exposure", "level", "status", "seconds", "whitelight_ppm_order_1",
         "whitelight_ratio_order_1", "error")


def main(argv=None):
    """Run the batch; exit status 0 only if every exposure is complete.

    Parameters
    ----------
    argv : list of str, optional

    Returns
    -------
    int
    """
    parser = argparse.ArgumentParser(
        prog="soss_batch",
        description="Reduce every NIRISS/SOSS exposure in the input folders (uncal or "
                    "rateints segments, grouped by their headers) with soss_detector1, "
                    "soss_spec2, soss_tso3 (and soss_fit), each stage of each exposure one "
                    "task on a dask.distributed cluster. Rerunning skips what is complete.")
    parser.add_argument("inputs", nargs="+", metavar="INPUT_DIR",
                        help="folders holding *_uncal.fits and/or *_rateints.fits segments")
    parser.add_argument("--output-dir", required=True, help="one folder per exposure, "
                        f"and {SUMMARY_NAME}")
    parser.add_argument("--scheduler", default=None, metavar="ADDRESS",
                        help="address of a running Dask scheduler (default: a local cluster)")
    parser.add_argument("--workers", type=int, default=None, metavar="N",
                        help="workers of the local cluster (default: one per core, as many "
                             "as the memory allows)")
    parser.add_argument("--params-dir", default=None, metavar="DIR",
                        help="parameter files, one per stage: soss_detector1.asdf, "
                             "soss_spec2.asdf, soss_tso3.asdf, soss_fit.asdf")
    parser.add_argument("--fit", action="store_true",
                        help="also fit the transits (the period goes in soss_fit.asdf)")
    parser.add_argument("--recursive", action="store_true", help="also search sub-folders")
    args = parser.parse_args(argv)
    if args.workers is not None and args.workers < 1:
        parser.error("--workers must be at least 1")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s - %(message)s")
    # The pipelines' own messages go to each exposure's log files; the
    # cluster's are news only when something goes wrong.
    importlib.import_module("distributed")  # its loggers get their levels when imported
    for name in list(logging.root.manager.loggerDict):
        if name.split(".")[0] == "distributed":
            logging.getLogger(name).setLevel(logging.WARNING)
    try:
        table = run_batch(args.inputs, args.output_dir, scheduler=args.scheduler,
                          workers=args.workers, params_dir=args.params_dir, fit=args.fit,
                          recursive=args.recursive)
    except SossInputError as err:
        print(f"soss_batch: error: {err}", file=sys.stderr)
        return 2
    shown = table[list(SHOWN)]
    shown["seconds"].format = ".1f"
    for name in ("whitelight_ppm_order_1", "whitelight_ratio_order_1"):
        shown[name].format = ".2f"
    shown.pprint_all()
    failed = int((table["status"] == "failed").sum())
    print(f"{len(table) - failed} of {len(table)} exposure(s) complete; summary in "
          f"{args.output_dir}/{SUMMARY_NAME}")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
