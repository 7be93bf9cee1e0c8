"""soss_combine: several visits' transmission spectra, per-visit offsets, one spectrum."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.table import Table

from jwst_soss_custom._base.errors import SossInputError
from jwst_soss_custom.fitting import SossCombineStep, combine_visits

BIN = Path(sys.executable).parent
EDGES = np.linspace(0.85, 2.83, 61)


def _visit(rng, truth, offset, orders=(1,), error=(60.0, 140.0), offset_order2=None):
    """A transmission table: the true spectrum plus an offset, drawn with its errors."""
    rows = []
    for order in orders:
        shift = offset if order == 1 or offset_order2 is None else offset_order2
        err = rng.uniform(*error, truth.size)
        depth = truth + shift + rng.normal(0.0, err)
        for k in range(truth.size):
            rows.append((order, k, EDGES[k], EDGES[k + 1], 0.5 * (EDGES[k] + EDGES[k + 1]),
                         depth[k], err[k], "ok"))
    table = Table(rows=rows, names=("order", "bin", "wave_low", "wave_high", "wave_center",
                                    "depth_ppm", "depth_error_ppm", "quality"))
    for name in ("wave_low", "wave_high", "wave_center"):
        table[name].unit = "um"
    table["quality"] = table["quality"].astype("U64")  # room for soss_fit's notes
    table.meta["target_name"] = "WASP-39"
    return table


TRUTH = 21000.0 + 600.0 * np.sin(np.linspace(0.0, 7.0, EDGES.size - 1))


def test_offsets_and_spectrum_are_recovered_within_their_errors():
    rng = np.random.default_rng(7)
    offsets = np.array([150.0, -90.0, 20.0, -80.0])
    tables = [_visit(rng, TRUTH, o) for o in offsets]
    spectrum, found = combine_visits(tables, ["a", "b", "c", "d"])
    # The offsets sum to zero: the spectrum sits at the visits' mean level.
    expected = offsets - offsets.mean()
    pulls = (np.asarray(found["offset_ppm"]) - expected) / np.asarray(found["offset_error_ppm"])
    assert np.all(np.abs(pulls) < 4), pulls
    assert abs(float(np.sum(found["offset_ppm"]))) < 1e-6
    pull = (np.asarray(spectrum["depth_ppm"]) - TRUTH - offsets.mean()) / spectrum["depth_error_ppm"]
    n = pull.size
    assert abs(np.mean(pull**2) - 1) < 5 * np.sqrt(2 / n)
    # Four visits of errors ~100 ppm: combined errors ~50 ppm.
    single = np.median([np.median(t["depth_error_ppm"]) for t in tables])
    ratio = np.median(spectrum["depth_error_ppm"]) / single
    assert 0.4 < ratio < 0.6
    assert spectrum.meta["visits"] == ["a", "b", "c", "d"]
    assert abs(spectrum.meta["chi2_red"] - 1) < 5 * np.sqrt(2 / (4 * n - n - 3))
    assert set(spectrum["n_visits"]) == {4}
    assert spectrum.meta["target_name"] == "WASP-39"


def test_per_order_offsets_and_partial_or_failed_channels():
    rng = np.random.default_rng(8)
    tables = [_visit(rng, TRUTH, o, orders=(1, 2), offset_order2=o2)
              for o, o2 in ((100.0, -200.0), (-100.0, 200.0), (0.0, 0.0))]
    tables[0]["quality"][3] = "failed: too few points"
    tables[1].remove_row(5)  # a channel that visit has not got
    spectrum, found = combine_visits(tables, offsets="visit_order")
    assert len(found) == 6 and set(found["order"]) == {1, 2}
    for row in found:
        truth = {("visit1", 1): 100, ("visit2", 1): -100, ("visit3", 1): 0,
                 ("visit1", 2): -200, ("visit2", 2): 200, ("visit3", 2): 0}[
                     (row["visit"], int(row["order"]))]
        assert abs(row["offset_ppm"] - truth) < 4 * row["offset_error_ppm"]
    order1 = spectrum[spectrum["order"] == 1]
    assert order1["n_visits"][3] == 2 and order1["n_visits"][5] == 2
    assert np.all(np.isfinite(spectrum["depth_ppm"]))
    # One offset per visit cannot follow order 2's opposite shifts: worse fit.
    _, shared = combine_visits(tables, offsets="visit")
    assert combine_visits(tables, offsets="visit")[0].meta["chi2_red"] > 2 * \
        spectrum.meta["chi2_red"]
    assert len(shared) == 3


def test_visits_that_cannot_be_combined_are_refused():
    rng = np.random.default_rng(9)
    one = _visit(rng, TRUTH, 0.0)
    with pytest.raises(SossInputError, match="at least two visits"):
        combine_visits([one])
    other = one.copy()
    other["wave_low"] += 0.001
    other["wave_high"] += 0.001
    with pytest.raises(SossInputError, match="bin their light curves alike"):
        combine_visits([one, other])
    with pytest.raises(SossInputError, match="offsets='per_night'"):
        combine_visits([one, one], offsets="per_night")
    del other["depth_error_ppm"]
    with pytest.raises(SossInputError, match="no 'depth_error_ppm' column"):
        combine_visits([one, other])


def test_strun_soss_combine_on_an_association(tmp_path):
    rng = np.random.default_rng(10)
    names = []
    for k, offset in enumerate((60.0, -60.0, 0.0)):
        name = f"jw0136600{k + 1}001_04101_00001_nis_transmission.ecsv"
        _visit(rng, TRUTH, offset).write(tmp_path / name, format="ascii.ecsv")
        names.append(name)
    subprocess.run([str(BIN / "asn_from_list"), "-o", "combine_asn.json", "--product-name",
                    "wasp39b", *names], check=True, cwd=tmp_path)
    proc = subprocess.run([str(BIN / "strun"), "soss_combine", "combine_asn.json",
                           "--save_plots=true", f"--output_dir={tmp_path / 'out'}"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Offset of jw01366001001_04101_00001_nis:" in proc.stderr
    spectrum = Table.read(tmp_path / "out" / "wasp39b_transmission_combined.ecsv")
    offsets = Table.read(tmp_path / "out" / "wasp39b_visit_offsets.ecsv")
    assert len(spectrum) == TRUTH.size and list(offsets["visit"]) == [n[:-18] for n in names]
    assert (tmp_path / "out" / "wasp39b_transmission_combined.png").stat().st_size > 10_000
    # One visit only: the message is the last line strun prints.
    proc = subprocess.run([str(BIN / "strun"), "soss_combine", str(tmp_path / names[0])],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode != 0
    assert "at least two visits" in proc.stderr.strip().splitlines()[-1]
    with pytest.raises(SossInputError, match="does not exist"):
        SossCombineStep.call([tmp_path / names[0], tmp_path / "nope_transmission.ecsv"])
    # The visits as separate arguments (strun soss_combine a.ecsv b.ecsv c.ecsv):
    # the same spectrum as from the association.
    separate = SossCombineStep.call(*[str(tmp_path / n) for n in names],
                                    output_dir=str(tmp_path / "sep"))
    np.testing.assert_array_equal(np.asarray(separate["depth_ppm"]),
                                  np.asarray(spectrum["depth_ppm"]))
