"""Trace positions and wavelengths of the SOSS orders (pure numpy + pastasoss).

The solution travels between steps as one explicit object, `TraceSolution`,
stored on the science model as the ``soss_traces`` attribute (saved in the
ASDF extension of a calints file) and optionally written as an ECSV table.
A step that finds no solution on its input predicts one from PWCPOS, so every
step still runs alone.
"""

import logging
from dataclasses import dataclass, field

import numpy as np
from astropy.table import Table
from pastasoss.soss_traces import get_soss_traces

from jwst_soss_custom._base.errors import SossInputError
from jwst_soss_custom._base.geometry import NX, subarray_rows
from jwst_soss_custom.metadata import TRACES_ATTRIBUTE, plain_record

__all__ = [
    "OrderTrace",
    "TraceSolution",
    "predict_traces",
    "model_trace",
    "drop_unread_orders",
    "MODEL_ATTRIBUTE",
]

log = logging.getLogger(__name__)

#: Rows of an order's core (either side of its centre) a subarray must read
#: for the order to be traced: its profile's core is ~10 rows wide each side.
TRACE_MARGIN = 10.0

#: Name of the model attribute that carries the trace solution.
MODEL_ATTRIBUTE = TRACES_ATTRIBUTE

#: Orders pastasoss models. Order 3 is not extracted in this version.
SUPPORTED_ORDERS = (1, 2)


@dataclass
class OrderTrace:
    """Trace of one order on the detector, one entry per detector column.

    Attributes
    ----------
    order : int
        Spectral order.
    y : ndarray (ncols,)
        Row of the trace centre per column (NaN where the order is off the
        detector).
    wavelength : ndarray (ncols,)
        Wavelength in micron per column (NaN where off the detector).
    record : dict
        How the trace was refined and its wavelengths checked (offsets from
        pastasoss, wavelength shift and status); empty for a prediction.
    """

    order: int
    y: np.ndarray
    wavelength: np.ndarray
    record: dict = field(default_factory=dict)

    @property
    def columns(self):
        """Indices of the columns where the order falls on the detector."""
        return np.flatnonzero(np.isfinite(self.y) & np.isfinite(self.wavelength))


@dataclass
class TraceSolution:
    """Trace positions of all extracted orders, and how they were obtained.

    Attributes
    ----------
    pwcpos : float
        Pupil-wheel position the prediction used.
    orders : dict of int to `OrderTrace`
    source : str
        How the traces were obtained (``"pastasoss"``, or
        ``"pastasoss+refined"`` when refined on the data).
    record : dict
        Solution-level notes: the order 2 vs order 1 wavelength cross-check,
        order 3's status, the order-0 contaminants found.
    """

    pwcpos: float
    orders: dict = field(default_factory=dict)
    source: str = "pastasoss"
    record: dict = field(default_factory=dict)

    def to_tree(self):
        """Plain dict (ASDF-serialisable) form, stored on the model."""
        tree = {"pwcpos": float(self.pwcpos), "source": self.source}
        if self.record:
            tree["record"] = dict(self.record)
        for order, trace in self.orders.items():
            tree[f"order{order}"] = {"y": trace.y, "wavelength": trace.wavelength}
            if trace.record:
                tree[f"order{order}"]["record"] = dict(trace.record)
        return tree

    @classmethod
    def from_tree(cls, tree):
        """Inverse of `to_tree`; accepts a dict or a model's ObjectNode."""
        tree = plain_record(tree)
        orders = {}
        for key, value in tree.items():
            if key.startswith("order"):
                order = int(key[5:])
                orders[order] = OrderTrace(
                    order,
                    np.asarray(value["y"], float),
                    np.asarray(value["wavelength"], float),
                    value.get("record", {}),
                )
        return cls(
            float(tree["pwcpos"]),
            orders,
            str(tree.get("source", "unknown")),
            tree.get("record", {}),
        )

    def to_table(self):
        """Astropy table with one row per column: ``x``, ``y_order<N>``, ``wavelength_order<N>``."""
        ncols = len(next(iter(self.orders.values())).y)
        table = Table({"x": np.arange(ncols)})
        for order, trace in sorted(self.orders.items()):
            table[f"y_order{order}"] = trace.y
            table[f"wavelength_order{order}"] = trace.wavelength
            table[f"wavelength_order{order}"].unit = "um"
        table.meta.update({"pwcpos": self.pwcpos, "source": self.source})
        return table


def model_trace(pwcpos, order):
    """pastasoss's trace of one order as samples, x increasing.

    Parameters
    ----------
    pwcpos : float
    order : int
        1 or 2.

    Returns
    -------
    x, y, wavelength : ndarray
    """
    model = get_soss_traces(float(pwcpos), order=str(order), interp=True)
    x, y, wave = (np.asarray(a, float) for a in (model.x, model.y, model.wavelength))
    idx = np.argsort(x)
    return x[idx], y[idx], wave[idx]


def predict_traces(pwcpos, orders=SUPPORTED_ORDERS, ncols=NX):
    """Predict trace centres and wavelengths from the pupil-wheel position.

    Parameters
    ----------
    pwcpos : float
        Pupil-wheel position (PWCPOS keyword) in degrees.
    orders : sequence of int
        Orders to predict (1 and 2; pastasoss has no order-3 model).
    ncols : int
        Number of detector columns.

    Returns
    -------
    TraceSolution
    """
    solution = TraceSolution(float(pwcpos), source="pastasoss")
    for order in orders:
        if order not in SUPPORTED_ORDERS:
            raise ValueError(
                f"Order {order} cannot be traced: pastasoss models orders 1 and 2 only."
            )
        mx, my, mwave = model_trace(pwcpos, order)
        x = np.rint(mx).astype(int)
        keep = (x >= 0) & (x < ncols)
        y = np.full(ncols, np.nan)
        wave = np.full(ncols, np.nan)
        y[x[keep]] = my[keep]
        wave[x[keep]] = mwave[keep]
        solution.orders[order] = OrderTrace(order, y, wave)
    return solution


def drop_unread_orders(solution, subarray, margin=TRACE_MARGIN):
    """Leave out the orders a subarray does not read (SUBSTRIP96: order 2).

    An order is kept when its centre lies at least ``margin`` rows inside
    the rows the subarray reads over 90 % of its columns; what is left out
    is logged and recorded (``solution.record["orders_not_read"]``).

    Parameters
    ----------
    solution : `TraceSolution`
        Modified in place.
    subarray : str
    margin : float
        Rows of the profile core that must be read on both sides of the centre.

    Returns
    -------
    list of ndarray
        The predicted centres (per column) of the orders left out.
    """
    rows = subarray_rows(subarray)
    dropped = []
    for order in sorted(solution.orders):
        y = solution.orders[order].y
        inside = (y >= rows.start + margin) & (y <= rows.stop - 1 - margin)
        if np.count_nonzero(inside) >= 0.9 * np.count_nonzero(np.isfinite(y)):
            continue
        dropped.append(solution.orders.pop(order).y)
        solution.record.setdefault("orders_not_read", []).append(order)
        log.info("Order %d is not traced or extracted: %s reads rows %d-%d of the SUBSTRIP256 "
                 "frame, and its trace lies outside them.", order, subarray, rows.start,
                 rows.stop - 1)
    if not solution.orders:
        raise SossInputError(f"No order to trace lies on the {subarray} rows: check orders.")
    return dropped
