"""Command line: ``soss_simulate --preset realistic --level rateints --output-dir DIR``."""

import argparse
import logging
import sys
import time
from pathlib import Path

from jwst_soss_custom._base.geometry import SUBARRAY_ROWS
from jwst_soss_custom.datasets.config import LEVELS, PRESETS


def build_parser():
    """Argument parser of ``soss_simulate``."""
    parser = argparse.ArgumentParser(
        prog="soss_simulate",
        description="Write a simulated NIRISS/SOSS time series (uncal or rateints "
        "segments, CRDS-format references, background template and truth file) to a folder.",
    )
    parser.add_argument("--preset", default="realistic", choices=sorted(PRESETS),
                        help="scene and size (default: realistic, a full WASP-39b-size visit "
                        "with what the pipeline does not assume)")
    parser.add_argument("--level", default="rateints", choices=LEVELS,
                        help="uncal: raw ramps and refs/ for the official Detector1; rateints "
                        "(default): the same ramps through the official Detector1 steps and "
                        "ramp fitting; slopes: rateints drawn at the slope level (fast)")
    parser.add_argument("--subarray", default=None, choices=sorted(SUBARRAY_ROWS),
                        help="SUBSTRIP256 (default) or SUBSTRIP96 (rows 10-105 of it)")
    parser.add_argument("--filter", default=None, choices=("CLEAR", "F277W"),
                        help="filter wheel: CLEAR (default) or F277W (order-0 location frames)")
    parser.add_argument("--jump-detection", default=None, choices=("truth", "jwst"),
                        help="rateints level: flag the simulated jumps (truth, default) or "
                        "run the official jump step (jwst, slower)")
    parser.add_argument("--processes", type=int, default=None,
                        help="worker processes at the ramp levels (default 2)")
    parser.add_argument("--output-dir", required=True, help="folder for the files")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--nints", type=int, default=None,
                        help="number of integrations (default: the preset's)")
    parser.add_argument("--nsegments", type=int, default=None,
                        help="number of segment files (default: the preset's)")
    parser.add_argument("--transit-duration-fraction", type=float, default=None,
                        help="rescale the period so the transit lasts this fraction of the "
                        "visit (default: the preset's)")
    parser.add_argument("--no-variances", action="store_true",
                        help="leave out VAR_POISSON and VAR_RNOISE (smaller files)")
    parser.add_argument("--quiet", action="store_true", help="only print the file names")
    return parser


def main(argv=None):
    """Run the simulator from the command line; print the files written."""
    from jwst_soss_custom.datasets.simulate import simulate

    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    overrides = {"level": args.level}
    for name in ("subarray", "filter", "jump_detection", "processes"):
        if getattr(args, name) is not None:
            overrides[name] = getattr(args, name)
    if args.nints is not None:
        overrides["nints"] = args.nints
    if args.nsegments is not None:
        overrides["nsegments"] = args.nsegments
    if args.transit_duration_fraction is not None:
        overrides["transit_duration_fraction"] = args.transit_duration_fraction
    if args.no_variances:
        overrides["write_variances"] = False
    if Path(args.output_dir).exists() and not Path(args.output_dir).is_dir():
        print(f"soss_simulate: error: --output-dir {args.output_dir} is a file, not a folder; "
              "give a folder (it is made if missing).", file=sys.stderr)
        return 2
    try:
        start = time.perf_counter()
        result = simulate(args.output_dir, preset=args.preset, seed=args.seed, **overrides)
    except (ValueError, OSError) as err:
        print(f"soss_simulate: error: {err}", file=sys.stderr)
        return 2
    for path in result.segment_files:
        print(path)
    print(result.truth_file)
    for path in result.background_files.values():
        print(path)
    for path in result.reference_files.values():
        print(path)
    if not args.quiet:
        print(f"# {result.config.nints} integrations in {time.perf_counter() - start:.1f} s",
              file=sys.stderr)
    return 0
