"""Developer tools (not installed with the package): run from the repository root.

* ``python -m tools.calibrate SHARED_DATA_DIR`` derives the simulator's
  packaged data (``jwst_soss_custom/data/``) from real SOSS material;
* `tools.measure` measures profiles and aperture sums the same way on real
  and simulated frames (used by the calibration, the simulator's tests and
  ``benchmarks/compare_real_frame.py``).
"""
