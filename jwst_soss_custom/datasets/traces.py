"""The true traces of the simulated scene: each order's centre and wavelength per column.

Orders 1 and 2 come from pastasoss at the exposure's pupil-wheel position,
order 3 from the SPECTRACE reference (`jwst_soss_custom._base.data`); a
static offset moves the true trace from the model, as on real data.
"""

import functools
from dataclasses import dataclass

import numpy as np

from jwst_soss_custom._base.data import order3_model
from jwst_soss_custom._base.geometry import NX

__all__ = ["SceneTrace", "trace_solution"]


@dataclass(frozen=True)
class SceneTrace:
    """Trace centre and wavelength of one order as functions of column.

    Attributes
    ----------
    order : int
        Spectral order.
    columns : ndarray of int
        Detector columns the order covers (contiguous).
    model_x, model_y, model_wavelength : ndarray
        Trace model samples (pastasoss for orders 1-2, SPECTRACE for order 3),
        x increasing.
    dx, dy : float
        Static offset of the trace from the model (pixels).
    """

    order: int
    columns: np.ndarray
    model_x: np.ndarray
    model_y: np.ndarray
    model_wavelength: np.ndarray
    dx: float = 0.0
    dy: float = 0.0

    def at(self, dx=0.0, dy=0.0):
        """Trace centre, wavelength and slope at ``columns`` for an extra shift.

        Parameters
        ----------
        dx, dy : float
            Shift (pixels) on top of the static offset, e.g. jitter.

        Returns
        -------
        y, wavelength, slope : ndarray
            Row of the profile centre, wavelength (micron) and dy/dx per column.
        """
        xm = self.columns - (self.dx + dx)
        y = np.interp(xm, self.model_x, self.model_y) + self.dy + dy
        wave = np.interp(xm, self.model_x, self.model_wavelength)
        slope = np.gradient(y, self.columns.astype(float))
        return y, wave, slope

    @property
    def y(self):
        """True trace centre per column (static offset included)."""
        return self.at()[0]

    @property
    def wavelength(self):
        """Wavelength (micron) per column."""
        return self.at()[1]

    @property
    def dispersion(self):
        """|d lambda / d x| (micron per pixel) per column."""
        return np.abs(np.gradient(self.wavelength, self.columns.astype(float)))


@functools.lru_cache(maxsize=32)
def _model_trace(order, pwcpos):
    if order in (1, 2):
        from pastasoss.soss_traces import get_soss_traces

        model = get_soss_traces(float(pwcpos), str(order))
        x, y, wave = (np.asarray(a, dtype=float) for a in (model.x, model.y, model.wavelength))
    elif order == 3:
        return order3_model()
    else:
        raise ValueError(f"order={order}: SOSS has orders 1, 2 and 3.")
    order_idx = np.argsort(x)
    return x[order_idx], y[order_idx], wave[order_idx]


def trace_solution(order, pwcpos, dx=0.0, dy=0.0):
    """Trace of one order at a pupil-wheel position, with an optional offset.

    Parameters
    ----------
    order : int
        1, 2 (pastasoss) or 3 (SPECTRACE reference, fixed position).
    pwcpos : float
        Pupil-wheel position (degrees).
    dx, dy : float
        Offset (pixels) of the true trace from the model.

    Returns
    -------
    SceneTrace
    """
    x, y, wave = _model_trace(int(order), float(pwcpos))
    first = max(0, int(np.ceil(x[0] + dx)))
    last = min(NX - 1, int(np.floor(x[-1] + dx)))
    columns = np.arange(first, last + 1)
    return SceneTrace(int(order), columns, x, y, wave, float(dx), float(dy))
