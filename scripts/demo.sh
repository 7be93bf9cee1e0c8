#!/usr/bin/env bash
# The main job on a fresh machine: install the package in ./.venv, simulate a
# realistic WASP-39b-like SOSS exposure (537 integrations, 4 segments: raw
# ramps with nghxrg readout noise and cosmic rays, field-star traces, visit
# systematics, put through the official Detector1 steps and ramp fitting),
# reduce it end to end with strun (soss_spec2, then soss_tso3) as a user
# would, and score the products against what was injected.
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

echo "== 1/5 simulate a $PRESET WASP-39b-like exposure (ramps -> official Detector1) into $OUT/rateints"
"$BIN/soss_simulate" --preset "$PRESET" --level rateints --output-dir rateints --seed 1 --quiet

echo "== 2/5 soss_spec2: rateints segments -> x1dints segments"
(cd rateints && "$BIN/asn_from_list" -r DMSLevel2bBase -o spec2_asn.json ./*_rateints.fits)
"$BIN/strun" soss_spec2 rateints/spec2_asn.json --output_dir x1dints

echo "== 3/5 soss_tso3: x1dints segments -> stitched x1dints, whtlt, speclc"
(cd x1dints && "$BIN/asn_from_list" -o tso3_asn.json --product-name wasp39b_demo ./*_x1dints.fits)
"$BIN/strun" soss_tso3 x1dints/tso3_asn.json --output_dir products

echo "== 4/5 products and precision"
"$BIN/python" -m jwst_soss_custom.report products/wasp39b_demo_whtlt.ecsv

echo "== 5/5 recovered against injected (transit fit, dilution, wavelengths)"
"$BIN/python" -m jwst_soss_custom.datasets.scoring products rateints/*_truth.asdf
