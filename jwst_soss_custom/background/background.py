"""Scaled background-template subtraction (pure numpy).

The SOSS zodiacal background has a fixed 2-D shape (with a sharp step near
column 700) whose level varies between visits, so a template is scaled to the
data in a source-free box and subtracted.
"""

from pathlib import Path

import numpy as np

__all__ = ["load_template", "box_slices", "background_scale", "subtract_background"]


def load_template(path, shape):
    """Read a 2-D background template and check it fits the data.

    Parameters
    ----------
    path : str or Path
        A ``.npy`` array (like the STScI SOSS background model), a ``.npz``
        archive holding one array, or a FITS file with the image in the SCI
        extension or the primary HDU.
    shape : tuple of int
        Frame shape (ny, nx) of the data it will be subtracted from.

    Returns
    -------
    ndarray (ny, nx) of float32
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"Background template {path} does not exist; give an existing .npy or "
            "FITS file with override_bkg."
        )
    if path.suffix.lower() == ".npy":
        template = np.load(path)
    elif path.suffix.lower() == ".npz":
        with np.load(path) as archive:
            if len(archive.files) != 1:
                raise ValueError(
                    f"Background template {path} holds {len(archive.files)} arrays "
                    f"({archive.files}); give a .npz with exactly one."
                )
            template = archive[archive.files[0]]
    elif path.suffix.lower() in (".fits", ".fit", ".fits.gz"):
        from astropy.io import fits

        with fits.open(path) as hdul:
            hdu = hdul["SCI"] if "SCI" in hdul else hdul[0]
            template = np.asarray(hdu.data)
    else:
        raise ValueError(
            f"Background template {path}: unknown format {path.suffix!r}; give a 2-D "
            ".npy/.npz array or a FITS image."
        )
    template = np.squeeze(template)
    if template.shape != tuple(shape):
        hint = ""
        if template.shape[0] == 96:
            hint = (
                " It looks like a SUBSTRIP96 template; SUBSTRIP256 data need a "
                "256-row template."
            )
        raise ValueError(
            f"Background template {path} has shape {template.shape} but the data frames "
            f"are {tuple(shape)}.{hint}"
        )
    if not np.isfinite(template).any():
        raise ValueError(f"Background template {path} has no finite value.")
    return template.astype(np.float32)


def box_slices(box, shape):
    """Validate a ``(x_start, x_stop, y_start, y_stop)`` box; return its (rows, cols) slices.

    Parameters
    ----------
    box : sequence of 4 int
        Python slice convention.
    shape : tuple of int
        Frame shape (ny, nx).

    Returns
    -------
    tuple of slice
    """
    x0, x1, y0, y1 = (int(v) for v in box)
    ny, nx = shape
    if not (0 <= x0 < x1 <= nx and 0 <= y0 < y1 <= ny):
        raise ValueError(
            f"Background box {list(box)} (x_start, x_stop, y_start, y_stop) is outside "
            f"the {ny}x{nx} frame or empty."
        )
    return slice(y0, y1), slice(x0, x1)


def background_scale(frame, template, percentiles=(25.0, 50.0)):
    """Scale of the template that matches a source-free region of a frame.

    The ratio frame/template is computed pixel by pixel, values outside the
    given percentile range are discarded (stars and cosmic rays only ever add
    flux, so the upper cut is the tighter one), and the median of the rest is
    the scale.

    Parameters
    ----------
    frame : ndarray
        Data in the region, typically of the deep (median over time) frame.
    template : ndarray, same shape
        Template in the same region.
    percentiles : pair of float
        Lower and upper percentile of the ratios kept.

    Returns
    -------
    float
    """
    lo, hi = percentiles
    if not 0 <= lo < hi <= 100:
        raise ValueError(
            f"Background percentiles {list(percentiles)} must satisfy 0 <= low < high <= 100."
        )
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = frame / template
    ratio = ratio[np.isfinite(ratio) & (template > 0)]
    if ratio.size < 10:
        raise ValueError(
            f"The background region has only {ratio.size} usable pixels; choose a "
            "source-free box where the template is positive."
        )
    low, high = np.percentile(ratio, [lo, hi])
    kept = ratio[(ratio >= low) & (ratio <= high)]
    return float(np.median(kept))


def subtract_background(data, template, scale):
    """Subtract ``scale * template`` from every integration, in place.

    Parameters
    ----------
    data : ndarray (nints, ny, nx) of float32
    template : ndarray (ny, nx)
    scale : float or ndarray (nints,)
    """
    model = np.asarray(scale, dtype=np.float32).reshape(-1, 1, 1) * template
    data -= model
