"""Cost against exposure length: soss_spec2 + soss_tso3 at 135, 270, 537 and 1074 integrations.

Each length is a ``full``-preset simulation with that many integrations (4
segments), reduced with ``strun`` as in `full_exposure.py`. Reports the wall
time and peak memory of each, the time per integration and its spread
(target: within 20 %), and plots both against the number of integrations.

Usage::

    python benchmarks/scaling.py [--workdir DIR] [--nints 135 270 537 1074] [--json out.json]
        [--plot scaling.png]
"""

import argparse
from pathlib import Path

from full_exposure import emit, run_exposure


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("benchmark_output"))
    parser.add_argument("--nints", type=int, nargs="+", default=[135, 270, 537, 1074])
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--plot", type=Path, default=None)
    args = parser.parse_args()
    work = args.workdir.resolve()
    work.mkdir(parents=True, exist_ok=True)

    runs = []
    for n in args.nints:
        report = run_exposure(work, "full", nints=n)
        report["ms_per_integration"] = round(1000 * report["total_wall_s"] / n, 1)
        runs.append(report)
        print(f"{n:5d} integrations: {report['total_wall_s']:6.1f} s "
              f"({report['ms_per_integration']:.1f} ms each), "
              f"peak {report['total_peak_MB']} MB", flush=True)
    per_int = [r["ms_per_integration"] for r in runs]
    spread = (max(per_int) - min(per_int)) / min(per_int)
    print(f"time per integration varies by {100 * spread:.0f} % (target < 20 %)")
    emit({"runs": runs, "ms_per_integration_spread": round(spread, 3)}, args.json)
    if args.plot:
        _plot(runs, args.plot)


def _plot(runs, path):
    from jwst_soss_custom.plotting import new_figure, save_figure

    fig, (left, right) = new_figure(1, 2, width=9.0, height=3.5)
    n = [r["nints"] for r in runs]
    ax = left
    ax.plot(n, [r["total_wall_s"] for r in runs], "o-", label="spec2 + tso3")
    ax.plot(n, [r["soss_spec2"]["wall_s"] for r in runs], "s--", label="spec2")
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
