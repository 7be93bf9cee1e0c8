"""Check that a code change leaves every product's numbers bit for bit as they were.

Simulates a preset (once, cached in ``--workdir``), reduces it with
``strun soss_spec2`` and ``strun soss_tso3`` as a user would (with two
processes, so the worker path is exercised too), and takes a SHA-256 digest
of every product's numbers: each FITS extension's data (the ASDF extension,
which holds dates and software versions, excepted) and each ECSV table's
columns. ``--record`` writes the digests; ``--compare`` checks them against
a recorded file and lists every product that differs.

Usage (before and after a refactor)::

    python benchmarks/identical_products.py --preset small --record before_small.json
    ... change the code ...
    python benchmarks/identical_products.py --preset small --compare before_small.json

Exit status 1 when a digest differs.
"""

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table

BIN = Path(sys.executable).parent


def digest_fits(path):
    """Digest of each data-bearing extension of a FITS file, by EXTNAME,EXTVER."""
    out = {}
    with fits.open(path) as hdul:
        for index, hdu in enumerate(hdul):
            if hdu.name == "ASDF" or hdu.data is None:
                continue
            data = hdu.data
            raw = data.tobytes() if isinstance(data, np.ndarray) else np.asarray(data).tobytes()
            out[f"{index}:{hdu.name},{hdu.ver}"] = hashlib.sha256(raw).hexdigest()
    return out


def digest_ecsv(path):
    """Digest of each column of an ECSV table (its metadata, which holds dates, excepted)."""
    table = Table.read(path, format="ascii.ecsv")
    return {
        name: hashlib.sha256(np.ascontiguousarray(table[name]).tobytes()).hexdigest()
        for name in table.colnames
    }


def digests(folder):
    """Digests of every FITS and ECSV product under ``folder``, by relative path."""
    out = {}
    for path in sorted(Path(folder).rglob("*")):
        if path.suffix == ".fits" and not path.name.endswith("_rateints.fits"):
            out[str(path.relative_to(folder))] = digest_fits(path)
        elif path.suffix == ".ecsv":
            out[str(path.relative_to(folder))] = digest_ecsv(path)
    return out


def run(cmd, cwd):
    """Run a command; stop with its output if it fails. Returns the seconds taken."""
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"{' '.join(map(str, cmd))} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    return time.perf_counter() - start


def reduce(preset, workdir):
    """Simulate (cached) and reduce a preset; return the products folder and timings."""
    data = workdir / f"{preset}_rateints"
    if not list(data.glob("*_rateints.fits")):
        run([BIN / "soss_simulate", "--preset", preset, "--level", "slopes",
             "--output-dir", str(data), "--seed", "1", "--quiet"], workdir)
    products = workdir / f"{preset}_products"
    for old in products.rglob("*") if products.exists() else []:
        if old.is_file():
            old.unlink()
    (products / "x1dints").mkdir(parents=True, exist_ok=True)
    segments = sorted(str(p) for p in data.glob("*_rateints.fits"))
    run([BIN / "asn_from_list", "-r", "DMSLevel2bBase", "-o", "spec2_asn.json", *segments],
        products)
    spec2 = run([BIN / "strun", "soss_spec2", "spec2_asn.json", "--output_dir", "x1dints",
                 "--processes", "2"], products)
    x1dints = sorted(p.name for p in (products / "x1dints").glob("*_x1dints.fits"))
    run([BIN / "asn_from_list", "-o", "tso3_asn.json", "--product-name", "identity", *x1dints],
        products / "x1dints")
    tso3 = run([BIN / "strun", "soss_tso3", "x1dints/tso3_asn.json", "--output_dir", "tso3"],
               products)
    return products, {"soss_spec2": round(spec2, 1), "soss_tso3": round(tso3, 1)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="small")
    parser.add_argument("--workdir", default="identity_work")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--record", help="write the digests to this JSON file")
    group.add_argument("--compare", help="compare the digests with this JSON file")
    args = parser.parse_args(argv)
    os.environ.setdefault("STPIPE_DISABLE_CRDS_STEPPARS", "true")
    os.environ.setdefault("MPLBACKEND", "Agg")
    workdir = Path(args.workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    products, seconds = reduce(args.preset, workdir)
    found = digests(products)
    print(f"{args.preset}: {len(found)} products, seconds {seconds}")
    if args.record:
        Path(args.record).write_text(
            json.dumps({"preset": args.preset, "seconds": seconds, "digests": found}, indent=1)
        )
        return 0
    expected = json.loads(Path(args.compare).read_text())["digests"]
    differ = sorted(
        name for name in set(expected) | set(found) if expected.get(name) != found.get(name)
    )
    for name in differ:
        parts = sorted(
            key for key in set(expected.get(name, {})) | set(found.get(name, {}))
            if expected.get(name, {}).get(key) != found.get(name, {}).get(key)
        )
        print(f"DIFFERS: {name}: {', '.join(parts) or 'missing'}")
    print("identical" if not differ else f"{len(differ)} product(s) differ")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
