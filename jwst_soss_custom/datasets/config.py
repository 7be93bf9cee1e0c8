"""Configuration of the SOSS time-series simulator: `SimConfig` and presets.

Every knob of a simulation is a field of `SimConfig`; presets are named sets
of overrides. The defaults describe the WASP-39b ERS transit (program 1366):
the numbers and how they were measured are in ``docs/simulator.md``.
"""

import dataclasses
import math
from dataclasses import dataclass, field

from jwst_soss_custom._base.geometry import SUBARRAY_ROWS

__all__ = [
    "SimConfig",
    "PRESETS",
    "NO_SYSTEMATICS",
    "make_config",
    "segment_sizes",
]

#: Frame (and group) time of SUBSTRIP256 read with NISRAPID, in seconds.
FRAME_TIME_SUBSTRIP256 = 5.494
#: Frame time of SUBSTRIP96 (NISRAPID), in seconds.
FRAME_TIME_SUBSTRIP96 = 2.214
#: What `simulate` can write.
LEVELS = ("slopes", "rateints", "uncal")


@dataclass
class SimConfig:
    """Every setting of one simulated SOSS exposure.

    Amplitudes of 0 switch an effect off. The defaults are the WASP-39b ERS
    visit (537 integrations of 9 groups, PWCPOS 245.79); see the presets for
    shorter exposures.

    Attributes
    ----------
    nints : int
        Integrations in the whole exposure.
    nsegments : int
        Number of ``rateints`` segment files; all but the last hold
        ``ceil(nints / nsegments)`` integrations, as the JWST ground system
        splits them.
    ngroups : int
        Groups per integration (NISRAPID: one frame per group).
    frame_time : float
        Frame time in seconds (5.494 s for SUBSTRIP256).
    pwcpos : float
        Pupil-wheel position (degrees); sets the traces through pastasoss.
    seed : int
        Seed of every random draw; the same seed gives the same files.
    start_time : str
        UTC start of the exposure (ISO format).
    gain : float
        Detector gain in e-/DN (photon noise is Poisson in electrons).
    read_noise_cds : float
        Correlated double-sampling read noise in DN; one read has
        ``read_noise_cds / sqrt(2)``.
    photon_noise, read_noise : bool
        Whether to draw photon (Poisson) and read noise.
    flux_scale : float
        Multiplies the stellar spectrum (1 = WASP-39, J = 10.7).
    orders : tuple of int
        Spectral orders drawn (1, 2 and 3).
    trace_dx, trace_dy : float
        Offset (pixels) of every trace from the pastasoss prediction, to
        test trace refinement. Positive ``trace_dx`` moves the spectrum to
        larger columns.
    trace_dx_order1, trace_dx_order2 : float
        Extra x offset (pixels) of one order only, on top of ``trace_dx``:
        a per-order error of pastasoss's wavelength solution, as seen on
        real data (order 2 ~0.9 px off while order 1 agreed).
    stellar_line_depth : float
        Scale of the stellar absorption-line depths (1 = the packaged,
        realistic depths; 0 = no lines).
    halo : bool
        Whether to draw the faint extended wings of the cross-dispersion
        profile measured on the real frame.
    background_scale : float
        Zodiacal background = ``background_scale`` x the packaged SUBSTRIP256
        template (0.88: the level fitted on the WASP-39 frame is 0.882).
    n_order0 : int
        Number of field-star order-0 contaminants (at most the number of
        packaged stamps).
    oneoverf_sigma : float
        Per-group, per-column standard deviation (DN) of the 1/f readout
        noise before the slope fit.
    oneoverf_scale : float
        Multiplies ``oneoverf_sigma`` (0 turns 1/f noise off).
    cr_rate : float
        Residual (unflagged) cosmic rays per pixel per integration.
    cr_min, cr_max : float
        Range (DN/s) of the cosmic-ray slope excess, drawn log-uniformly.
    n_hot, n_dead : int
        Numbers of hot and dead pixels.
    flagged_fraction : float
        Fraction of hot and dead pixels flagged in DQ (HOT/DEAD +
        DO_NOT_USE, with NaN science values as Detector1 leaves them); the
        rest are left unflagged for bad-pixel steps to find.
    jitter_rms_y, jitter_rms_x : float
        RMS (pixels) of the per-integration trace position jitter.
    drift_y, drift_x : float
        Linear drift (pixels) of the trace from the first to the last
        integration, centred on the middle of the visit.
    jitter_rms_width, drift_width : float
        RMS and linear drift (first to last integration) of the relative
        change of the cross-dispersion profile width per integration
        (0.01 = 1 % wider); 0 by default.
    transit : bool
        Whether to inject the transit.
    period : float
        Orbital period in days.
    a_rs : float
        Semi-major axis in stellar radii.
    inc : float
        Orbital inclination in degrees.
    t0_fraction : float
        Mid-transit time as a fraction of the visit (0.5 = middle).
    transit_duration_fraction : float or None
        If given, the period is rescaled (a/R* and inclination kept) so the
        transit lasts this fraction of the visit; used by the short presets
        so a short exposure still has baseline on both sides.
    depth_scale : float
        Multiplies the injected depth spectrum Rp/R*(lambda)^2.
    program, observation, visit : str
        Identifiers used in metadata and file names.
    write_variances : bool
        Write the VAR_POISSON and VAR_RNOISE extensions as Detector1 does;
        False leaves them out (40 % smaller files, for very long benchmark
        exposures: the reduction reads only SCI, ERR and DQ).
    level : str
        What `simulate` writes: ``"slopes"`` (rateints drawn at the slope
        level: fast, for unit tests), ``"rateints"`` (raw ramps simulated
        read by read and put through the official Detector1 steps and
        ramp fitting) or ``"uncal"`` (the raw ramps, with CRDS-format
        references for the official Detector1).
    subarray : str
        ``"SUBSTRIP256"`` or ``"SUBSTRIP96"`` (rows 10-105 of SUBSTRIP256,
        frame time 2.214 s).
    filter : str
        ``"CLEAR"`` or ``"F277W"`` (only order-1 light at 2.42-3.13 um, the
        field-star order 0s at their real F277W brightness, a fainter
        background; see `jwst_soss_custom.datasets.field`).
    teff : float or None
        Host-star temperature (K). None keeps the WASP-39 continuum with the
        packaged line list (`STELLAR_LINES`); a value draws a host star with
        its own, perturbed line list (see `jwst_soss_custom.datasets.field`).
    stellar_rv : float
        Line-of-sight velocity of the host relative to the observatory (km/s,
        > 0 receding: its systemic velocity plus the observatory's): its
        lines appear at ``lambda (1 + v / c)``, 0.2-0.5 px per 60 km/s.
    n_contaminants : int
        Field stars whose order 1-2 traces fall on the detector, 0.5-5 % of
        the target's flux.
    visit_ramp_amplitude, visit_ramp_tau : float
        Start-of-visit ramp: flux deficit ``A exp(-t / tau)``, tau in minutes.
    flux_drift : float
        Linear relative flux change from the first to the last integration.
    tilt_integration : int or None
        Integration (0-based) at which a mirror-tilt event changes the trace:
        ``tilt_dy`` (pixels), ``tilt_dwidth`` (relative width) and
        ``tilt_flux`` (relative flux) steps from then on.
    background_structure : float
        Relative amplitude (RMS) of smooth structure multiplied onto the
        background template.
    read_noise_e : float
        White read noise of one read (e-); ramp levels.
    pink_correlated, pink_uncorrelated, acn, pedestal : float
        nghxrg readout-noise components (e-): correlated and uncorrelated
        pink noise (added in quadrature: one output), alternating-column
        noise, pedestal offset per frame. ``oneoverf_scale`` multiplies the
        pink and ACN terms at the ramp levels too.
    ktc_noise : float
        Reset noise (e-) per pixel and integration.
    bias_level : float
        Mean superbias (DN).
    dark_current : float
        Mean dark current (e-/s) of normal pixels.
    nonlinearity : float
        Mean coefficient ``a`` (1/DN) of the response ``t = m + a m^2``.
    full_well : float
        Mean full well (DN of linear signal).
    cr_flux : float
        Cosmic rays per cm^2 per second (ramp levels; 18 um pixels).
    cr_charge : tuple of float
        Range (e-) of a cosmic ray's charge, drawn log-uniformly.
    jump_detection : str
        At the ``rateints`` level: ``"jwst"`` runs the official jump step,
        ``"truth"`` flags the jumps the simulator made (those above 5x the
        CDS noise: fast, and the detection is not what is being tested).
    processes : int
        Worker processes (one segment each) at the ramp levels; the files do
        not depend on it.
    preset : str or None
        Name of the preset the configuration came from (for the record).
    """

    nints: int = 537
    nsegments: int = 4
    ngroups: int = 9
    frame_time: float = FRAME_TIME_SUBSTRIP256
    pwcpos: float = 245.79
    seed: int = 0
    start_time: str = "2022-07-26T20:57:00"
    gain: float = 1.6
    read_noise_cds: float = 14.0
    photon_noise: bool = True
    read_noise: bool = True
    flux_scale: float = 1.0
    orders: tuple = (1, 2, 3)
    trace_dx: float = 0.0
    trace_dy: float = 0.0
    trace_dx_order1: float = 0.0
    trace_dx_order2: float = 0.0
    stellar_line_depth: float = 1.0
    halo: bool = True
    background_scale: float = 0.88
    n_order0: int = 5
    oneoverf_sigma: float = 3.0
    oneoverf_scale: float = 1.0
    cr_rate: float = 5e-5
    cr_min: float = 5.0
    cr_max: float = 500.0
    n_hot: int = 300
    n_dead: int = 600
    flagged_fraction: float = 0.7
    jitter_rms_y: float = 0.02
    jitter_rms_x: float = 0.0
    drift_y: float = 0.0
    drift_x: float = 0.0
    jitter_rms_width: float = 0.0
    drift_width: float = 0.0
    transit: bool = True
    period: float = 4.0552941
    a_rs: float = 11.4
    inc: float = 87.7
    t0_fraction: float = 0.5
    transit_duration_fraction: float | None = None
    depth_scale: float = 1.0
    program: str = "01366"
    observation: str = "001"
    visit: str = "001"
    write_variances: bool = True
    level: str = "slopes"
    subarray: str = "SUBSTRIP256"
    filter: str = "CLEAR"
    teff: float | None = None
    stellar_rv: float = 0.0
    n_contaminants: int = 0
    visit_ramp_amplitude: float = 0.0
    visit_ramp_tau: float = 20.0
    flux_drift: float = 0.0
    tilt_integration: int | None = None
    tilt_dy: float = 0.0
    tilt_dwidth: float = 0.0
    tilt_flux: float = 0.0
    background_structure: float = 0.0
    read_noise_e: float = 12.95
    pink_correlated: float = 9.6
    pink_uncorrelated: float = 3.2
    acn: float = 2.0
    pedestal: float = 18.3
    ktc_noise: float = 30.0
    bias_level: float = 12000.0
    dark_current: float = 0.03
    nonlinearity: float = 1.25e-6
    full_well: float = 45000.0
    cr_flux: float = 5.0
    cr_charge: tuple = (300.0, 30000.0)
    jump_detection: str = "truth"
    processes: int = 2
    preset: str | None = field(default=None)

    def __post_init__(self):
        self.orders = tuple(int(o) for o in self.orders)
        if self.nints < 1:
            raise ValueError(f"nints={self.nints}: need at least one integration.")
        if not 1 <= self.nsegments <= self.nints:
            raise ValueError(
                f"nsegments={self.nsegments} must be between 1 and nints={self.nints}."
            )
        if self.ngroups < 2:
            raise ValueError(f"ngroups={self.ngroups}: a slope needs at least 2 groups.")
        if not set(self.orders) <= {1, 2, 3}:
            raise ValueError(f"orders={self.orders}: only orders 1, 2 and 3 exist.")
        if not 0.0 <= self.flagged_fraction <= 1.0:
            raise ValueError(f"flagged_fraction={self.flagged_fraction} must be in [0, 1].")
        if self.level not in LEVELS:
            raise ValueError(f"level={self.level!r}: choose one of {LEVELS}.")
        if self.subarray not in SUBARRAY_ROWS:
            raise ValueError(
                f"subarray={self.subarray!r}: choose one of {sorted(SUBARRAY_ROWS)}."
            )
        if self.filter not in ("CLEAR", "F277W"):
            raise ValueError(f"filter={self.filter!r}: SOSS uses CLEAR or F277W.")
        if self.jump_detection not in ("truth", "jwst"):
            raise ValueError(
                f"jump_detection={self.jump_detection!r}: choose 'truth' or 'jwst'."
            )
        self.cr_charge = tuple(float(c) for c in self.cr_charge)
        if self.subarray == "SUBSTRIP96" and self.frame_time == FRAME_TIME_SUBSTRIP256:
            self.frame_time = FRAME_TIME_SUBSTRIP96
        if self.cr_rate < 0 or self.n_hot < 0 or self.n_dead < 0 or self.n_order0 < 0:
            raise ValueError("cr_rate, n_hot, n_dead and n_order0 must not be negative.")

    @property
    def ny(self):
        """Rows of the subarray."""
        return SUBARRAY_ROWS[self.subarray][1] - SUBARRAY_ROWS[self.subarray][0]

    @property
    def rows(self):
        """Slice of the SUBSTRIP256 scene rows the subarray reads."""
        return slice(*SUBARRAY_ROWS[self.subarray])

    @property
    def subarray_ystart(self):
        """1-based full-frame row of the subarray's first row (DMS)."""
        return 1793 + SUBARRAY_ROWS[self.subarray][0]

    @property
    def group_time(self):
        """Group time in seconds (NISRAPID: one frame per group, no gap)."""
        return self.frame_time

    @property
    def integration_time(self):
        """``EFFINTTM``: ngroups x group time, in seconds."""
        return self.ngroups * self.group_time

    @property
    def slope_time(self):
        """Time between the first and last group, the lever arm of the slope (s)."""
        return (self.ngroups - 1) * self.group_time

    @property
    def cadence(self):
        """Time between integration starts: the groups plus one reset frame (s)."""
        return (self.ngroups + 1) * self.frame_time

    @property
    def root(self):
        """File-name root, e.g. ``jw01366001001_04101_00001``."""
        return f"jw{self.program}{self.observation}{self.visit}_04101_00001"

    def to_dict(self):
        """Plain-type dictionary (for the truth file and logs)."""
        out = dataclasses.asdict(self)
        out["orders"] = list(self.orders)
        out["cr_charge"] = list(self.cr_charge)
        return out


#: Overrides that switch off every systematic effect but photon and read
#: noise, the transit and the static scene (for noise and depth tests).
NO_SYSTEMATICS = {
    "oneoverf_scale": 0.0,
    "cr_rate": 0.0,
    "cr_flux": 0.0,
    "n_hot": 0,
    "n_dead": 0,
    "jitter_rms_y": 0.0,
    "jitter_rms_x": 0.0,
    "drift_y": 0.0,
    "drift_x": 0.0,
    "jitter_rms_width": 0.0,
    "drift_width": 0.0,
}

#: Settings shared by the realistic presets (see ``docs/simulator.md``).
REALISTIC = {
    "teff": 5400.0,
    "stellar_rv": -58.0,
    "n_contaminants": 2,
    "visit_ramp_amplitude": 0.002,
    "visit_ramp_tau": 20.0,
    "flux_drift": -3e-4,
    "background_structure": 0.03,
    "trace_dx": 0.3,
    "trace_dy": 0.5,
    "trace_dx_order2": 0.5,
    "drift_y": 0.05,
    "gain": 1.61,
}

#: Named presets: overrides of the `SimConfig` defaults.
PRESETS = {
    # Unit tests: full frames, few integrations; the transit is shortened to
    # the middle third of the visit so both baselines exist.
    "tiny": {"nints": 30, "nsegments": 2, "transit_duration_fraction": 1 / 3},
    # Quick demonstrations and step tests with a better-sampled light curve.
    "small": {"nints": 100, "nsegments": 2, "transit_duration_fraction": 1 / 3},
    # The WASP-39b ERS exposure: 537 integrations in segments of 135,135,135,132.
    "full": {"nints": 537, "nsegments": 4},
    # What the pipeline does not assume: a host with its own line list, two
    # field-star traces, a start-of-visit ramp, a drift, background
    # structure, traces and order-2 wavelengths off pastasoss, and (at the
    # ramp levels) nghxrg readout noise and cosmic-ray jumps. The default of
    # `soss_simulate`.
    "realistic": {"nints": 537, "nsegments": 4, **REALISTIC},
    "realistic_small": {"nints": 100, "nsegments": 2, "transit_duration_fraction": 1 / 3,
                        **REALISTIC},
    # Harder: a cool host, four contaminants up to 5 %, a tilt event, 1.5x
    # the readout noise, 3x the cosmic rays, a host 2.5x brighter (the trace
    # core saturates in the last groups) and larger wavelength offsets.
    "hard": {"nints": 537, "nsegments": 4, **REALISTIC, "teff": 3600.0,
             "n_contaminants": 4, "tilt_integration": 400, "tilt_dy": 0.05,
             "tilt_dwidth": 0.01, "tilt_flux": -3e-4, "oneoverf_scale": 1.5,
             "cr_flux": 15.0, "flux_scale": 2.5, "visit_ramp_amplitude": 0.004,
             "background_structure": 0.06, "trace_dx": -0.8, "trace_dx_order2": 0.9,
             "stellar_rv": 31.0},
}


def make_config(preset="tiny", **overrides):
    """Build a `SimConfig` from a preset and overrides.

    Parameters
    ----------
    preset : str or None
        Name in `PRESETS`, or None for the bare defaults.
    **overrides
        Any `SimConfig` field.

    Returns
    -------
    SimConfig
    """
    if preset is not None and preset not in PRESETS:
        raise ValueError(f"Unknown preset {preset!r}; choose one of {sorted(PRESETS)}.")
    names = {f.name for f in dataclasses.fields(SimConfig)}
    unknown = set(overrides) - names
    if unknown:
        raise ValueError(
            f"Unknown SimConfig field(s) {sorted(unknown)}; valid fields: {sorted(names)}."
        )
    values = dict(PRESETS.get(preset, {})) if preset else {}
    values.update(overrides)
    values.setdefault("preset", preset)
    return SimConfig(**values)


def segment_sizes(nints, nsegments):
    """Integrations per segment, as the JWST ground system splits an exposure.

    Every segment but the last holds ``ceil(nints / nsegments)`` integrations
    (537 in 4 segments gives 135, 135, 135, 132).

    Parameters
    ----------
    nints, nsegments : int

    Returns
    -------
    list of int
    """
    per = math.ceil(nints / nsegments)
    sizes = []
    left = nints
    while left > 0:
        sizes.append(min(per, left))
        left -= per
    if len(sizes) != nsegments:
        raise ValueError(
            f"{nints} integrations cannot be split into {nsegments} segments of "
            f"{per} (the last would be empty); choose fewer segments."
        )
    return sizes
