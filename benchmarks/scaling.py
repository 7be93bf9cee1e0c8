"""Cost against exposure length: soss_spec2 + soss_tso3 at 135, 270, 537 and 1074 integrations.

Each length is a ``full``-preset simulation with that many integrations (4
segments), reduced with ``strun`` as in `full_exposure.py`. Reports the wall
time and peak memory of each; fits ``t = fixed + marginal x nints`` (the
fixed part: two Python start-ups with jwst, exposure-level fits) and reports
the time per integration beyond the fixed cost and its spread (target:
within 20 %), and plots both against the number of integrations.

Usage::

    python benchmarks/scaling.py [--workdir DIR] [--nints 135 270 537 1074] [--json out.json]
        [--plot scaling.png]
"""

import argparse
import json
from pathlib import Path

import numpy as np
from full_exposure import emit, median_run, run_exposure


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("benchmark_output"))
    parser.add_argument("--nints", type=int, nargs="+", default=[135, 270, 537, 1074])
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--plot", type=Path, default=None)
    parser.add_argument("--repeat", type=int, default=3, help="runs per length (median kept)")
    parser.add_argument("--reuse", type=Path, default=None,
                        help="analyse the runs of an earlier --json instead of running")
    args = parser.parse_args()
    work = args.workdir.resolve()
    work.mkdir(parents=True, exist_ok=True)

    if args.reuse:
        runs = json.loads(args.reuse.read_text())["runs"]
    else:
        runs = []
        for n in args.nints:
            # Short visits keep baseline around the transit (the cost does
            # not depend on where the transit is).
            short = ["--transit-duration-fraction", "0.333"] if n < 400 else []
            # The median of ``repeat`` runs: single short runs scatter by 2-3 s.
            runs.append(median_run([run_exposure(work, "full", nints=n, simulate_options=short)
                                    for _ in range(args.repeat)]))
    summary = {"runs": runs, **analyse(runs)}
    for r in runs:
        print(f"{r['nints']:5d} integrations: {r['total_wall_s']:6.1f} s, "
              f"peak {r['total_peak_MB']} MB (spec2 {r['soss_spec2']['peak_MB']} MB)")
    print(f"fixed cost {summary['fixed_s']:.1f} s + {summary['marginal_ms']:.1f} ms per "
          f"integration; per-integration time beyond the fixed cost varies by "
          f"{100 * summary['per_integration_spread']:.0f} %; total / integrations by "
          f"{100 * summary['total_per_integration_spread']:.0f} %")
    emit(summary, args.json)
    if args.plot:
        _plot(runs, summary, args.plot)


def analyse(runs):
    """Least-squares ``t = fixed + marginal x nints`` of the total wall times, and spreads.

    Parameters
    ----------
    runs : list of dict
        Reports of `full_exposure.run_exposure`.

    Returns
    -------
    dict
        ``fixed_s``, ``marginal_ms``, ``per_integration_ms`` (time beyond the
        fixed cost, per integration, for each run), its relative spread
        (max - min) / min, and the same spread of total time / integrations.
    """
    n = np.array([r["nints"] for r in runs], float)
    t = np.array([r["total_wall_s"] for r in runs])
    marginal, fixed = np.polyfit(n, t, 1)
    beyond = (t - fixed) / n * 1000
    total = t / n * 1000
    return {
        "fixed_s": round(float(fixed), 2),
        "marginal_ms": round(float(marginal * 1000), 2),
        "per_integration_ms": [round(float(v), 1) for v in beyond],
        "per_integration_spread": round(float(np.ptp(beyond) / beyond.min()), 3),
        "total_per_integration_ms": [round(float(v), 1) for v in total],
        "total_per_integration_spread": round(float(np.ptp(total) / total.min()), 3),
    }


def _plot(runs, summary, path):
    from jwst_soss_custom.plotting import new_figure, save_figure

    fig, (left, right) = new_figure(1, 2, width=9.0, height=3.5)
    n = [r["nints"] for r in runs]
    ax = left
    ax.plot(n, [r["total_wall_s"] for r in runs], "o-", label="spec2 + tso3")
    ax.plot(n, [r["soss_spec2"]["wall_s"] for r in runs], "s--", label="spec2")
    grid = np.linspace(0, max(n), 50)
    ax.plot(grid, summary["fixed_s"] + summary["marginal_ms"] / 1000 * grid, ":",
            label=f"{summary['fixed_s']:.0f} s + {summary['marginal_ms']:.0f} ms / integration")
    ax.set_xlabel("integrations")
    ax.set_ylabel("wall time (s)")
    ax.legend()
    ax = right
    ax.plot(n, [r["soss_spec2"]["peak_MB"] / 1024 for r in runs], "o-", label="spec2")
    ax.plot(n, [r["soss_tso3"]["peak_MB"] / 1024 for r in runs], "s--", label="tso3")
    ax.set_xlabel("integrations")
    ax.set_ylabel("peak memory (GB)")
    ax.legend()
    save_figure(fig, path)


if __name__ == "__main__":
    main()
