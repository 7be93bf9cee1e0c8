#!/usr/bin/env bash
# The main job on a fresh machine: install the package in ./.venv, simulate a
# realistic WASP-39b-like SOSS exposure as the archive delivers it (537
# integrations in 4 raw-ramp uncal segments: nghxrg readout noise with 1/f,
# cosmic rays, non-linearity, field-star traces, visit systematics), reduce
# it end to end with strun as a user would (soss_detector1 on the
# simulator's references, offline; then soss_spec2 and soss_tso3), and score
# the products against what was injected.
#
# Usage: bash scripts/demo.sh [OUTPUT_DIR] [PRESET]   (defaults: demo_output realistic;
#        realistic_small: 100 integrations, a few minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-demo_output}
PRESET=${2:-realistic}
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e .
export STPIPE_DISABLE_CRDS_STEPPARS=true MPLBACKEND=Agg
BIN=$(pwd)/.venv/bin
mkdir -p "$OUT"
cd "$OUT"

echo "== 1/6 simulate a $PRESET WASP-39b-like exposure as raw ramps into $OUT/raw"
"$BIN/soss_simulate" --preset "$PRESET" --level uncal --output-dir raw --seed 1 --quiet

echo "== 2/6 soss_detector1: uncal segments -> rateints (official steps, group-level 1/f)"
# Offline: the simulator's references as overrides, CRDS pointed at its cache.
REFS="$BIN/python -m jwst_soss_custom.datasets.crds_refs raw/refs"
export $($REFS --env)
(cd raw && "$BIN/asn_from_list" -r DMSLevel2bBase -o detector1_asn.json ./*_uncal.fits)
"$BIN/strun" soss_detector1 raw/detector1_asn.json --output_dir rateints $($REFS)

echo "== 3/6 soss_spec2: rateints segments -> x1dints segments"
(cd rateints && "$BIN/asn_from_list" -r DMSLevel2bBase -o spec2_asn.json ./*_rateints.fits)
"$BIN/strun" soss_spec2 rateints/spec2_asn.json --output_dir x1dints

echo "== 4/6 soss_tso3: x1dints segments -> stitched x1dints, whtlt, speclc"
(cd x1dints && "$BIN/asn_from_list" -o tso3_asn.json --product-name wasp39b_demo ./*_x1dints.fits)
"$BIN/strun" soss_tso3 x1dints/tso3_asn.json --output_dir products

echo "== 5/6 products and precision"
"$BIN/python" -m jwst_soss_custom.report products/wasp39b_demo_whtlt.ecsv

echo "== 6/6 recovered against injected (transit fit, dilution, wavelengths)"
"$BIN/python" -m jwst_soss_custom.datasets.scoring products raw/*_truth.asdf
