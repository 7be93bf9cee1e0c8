"""Transit light curve times systematics: the model the fits adjust.

Pure numpy (and batman for the transit). The flux model of one light curve is

    F(t) = T(t; t0, rp, a_rs, b, q1, q2) * P(x) * R(t) * (1 + sum_j k_j z_j(t))

* ``T``: batman quadratic limb darkening, circular orbit of period ``period``,
  inclination from the impact parameter ``b = a_rs cos(inc)``, limb darkening
  in Kipping's (2013) parametrisation ``q1, q2`` in [0, 1] (every pair gives a
  physical law): ``u1 = 2 sqrt(q1) q2``, ``u2 = sqrt(q1) (1 - 2 q2)``;
* ``P``: polynomial ``c0 + c1 x + ...`` in ``x = (t - t_mid) / span``;
* ``R``: optional ramp ``1 + ramp_amp exp(-(t - t_first) / ramp_tau)``;
* ``z_j``: standardised regressors (zero mean, unit standard deviation).
"""

import numpy as np

__all__ = ["LightCurveModel", "ld_from_q", "q_from_ld", "inclination"]


def ld_from_q(q1, q2):
    """Quadratic coefficients (u1, u2) from Kipping's q1, q2."""
    s = np.sqrt(q1)
    return 2.0 * s * q2, s * (1.0 - 2.0 * q2)


def q_from_ld(u1, u2):
    """Kipping's q1, q2 from quadratic coefficients (clipped to [0, 1])."""
    total = u1 + u2
    q1 = np.clip(total**2, 0.0, 1.0)
    q2 = np.clip(u1 / (2.0 * total) if total != 0 else 0.5, 0.0, 1.0)
    return float(q1), float(q2)


def inclination(a_rs, b):
    """Inclination (degrees) from a/R* and the impact parameter."""
    return float(np.degrees(np.arccos(np.clip(b / a_rs, -1.0, 1.0))))


class LightCurveModel:
    """Transit x systematics model of one light curve.

    Parameters
    ----------
    time : ndarray
        Mid-integration times (days).
    period : float
        Orbital period (days).
    poly_order : int
        Order of the polynomial baseline in time (0 = constant).
    ramp : bool
        Include the exponential ramp.
    regressors : dict of str to ndarray, optional
        Extra linear terms (e.g. trace shifts), standardised here.
    """

    ORBIT = ("t0", "rp", "a_rs", "b", "q1", "q2")

    def __init__(self, time, period, poly_order=1, ramp=False, regressors=None):
        import batman

        self.time = np.asarray(time, dtype=float)
        self.period = float(period)
        self.t_first = float(self.time.min())
        span = float(np.ptp(self.time)) or 1.0
        self.span = span
        self.time_mid = 0.5 * (self.time.min() + self.time.max())
        self.x = (self.time - self.time_mid) / span
        self.poly_order = int(poly_order)
        self.ramp = bool(ramp)
        self.regressors = {}
        for name, values in (regressors or {}).items():
            values = np.asarray(values, dtype=float)
            sd = np.std(values)
            if not np.all(np.isfinite(values)) or sd == 0:
                continue  # a constant or incomplete regressor carries no information
            self.regressors[name] = (values - values.mean()) / sd
        self.names = list(self.ORBIT) + [f"c{k}" for k in range(self.poly_order + 1)]
        if self.ramp:
            self.names += ["ramp_amp", "ramp_tau"]
        self.names += [f"k_{name}" for name in self.regressors]
        self._params = batman.TransitParams()
        p = self._params
        p.t0, p.per, p.rp, p.a, p.inc = float(self.time.mean()), self.period, 0.1, 10.0, 90.0
        p.ecc, p.w, p.limb_dark, p.u = 0.0, 90.0, "quadratic", [0.1, 0.1]
        self._batman = batman.TransitModel(p, self.time)

    def transit(self, values):
        """The transit alone, for a dict of parameter values."""
        p = self._params
        p.t0 = float(values["t0"])
        p.rp = float(values["rp"])
        p.a = float(values["a_rs"])
        p.inc = inclination(values["a_rs"], values["b"])
        u1, u2 = ld_from_q(values["q1"], values["q2"])
        p.u = [float(u1), float(u2)]
        return self._batman.light_curve(p)

    def systematics(self, values):
        """The systematics factor alone, for a dict of parameter values."""
        poly = np.zeros_like(self.x)
        for k in range(self.poly_order, -1, -1):
            poly = poly * self.x + values[f"c{k}"]
        if self.ramp:
            tau = max(float(values["ramp_tau"]), 1e-6)
            poly = poly * (1.0 + values["ramp_amp"] * np.exp(-(self.time - self.t_first) / tau))
        if self.regressors:
            lin = np.ones_like(self.x)
            for name, z in self.regressors.items():
                lin = lin + values[f"k_{name}"] * z
            poly = poly * lin
        return poly

    def __call__(self, values):
        return self.transit(values) * self.systematics(values)

    def defaults(self):
        """Initial value and bounds of the systematics parameters."""
        out = {}
        for k in range(self.poly_order + 1):
            out[f"c{k}"] = (1.0 if k == 0 else 0.0, -np.inf, np.inf)
        if self.ramp:
            out["ramp_amp"] = (0.0, -0.5, 0.5)
            out["ramp_tau"] = (0.02 * self.span, 1e-4 * self.span, 0.5 * self.span)
        for name in self.regressors:
            out[f"k_{name}"] = (0.0, -np.inf, np.inf)
        return out
