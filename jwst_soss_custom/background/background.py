"""Scaled background-template subtraction (pure numpy).

The SOSS zodiacal background has a fixed 2-D shape (with a step near column
700) whose level varies between visits, so a template is scaled to the data
in source-free regions and subtracted. The two sides of the step come from
different parts of the sky and their ratio can differ from the template's,
so each side gets its own scale. With a library of templates, the one whose
scaled version fits the regions best is used.
"""

import numpy as np

from jwst_soss_custom._base.geometry import subarray_rows, subarray_shape
from jwst_soss_custom.references import read_image_arrays

from .halo import fit_halo

__all__ = [
    "load_template",
    "load_templates",
    "box_slices",
    "background_scale",
    "trimmed_median",
    "locate_step",
    "fit_background",
    "fit_background_and_halo",
    "background_model",
    "subtract_background",
]


def load_templates(path, shape, subarray="SUBSTRIP256"):
    """Read one or several 2-D background templates and check they fit the data.

    A template of a smaller subarray's own shape (SUBSTRIP96, like the STScI
    model) is placed in the rows of the frame that subarray reads.

    Parameters
    ----------
    path : str or Path
        A ``.npy`` array (2-D like the STScI SOSS background model, or 3-D:
        a stack of templates), a ``.npz`` archive (each array one template),
        or a FITS file: every image extension of the frame's shape is a
        template (a 3-D image is a stack), or the primary HDU alone.
    shape : tuple of int
        Frame shape (ny, nx) of the data they will be subtracted from.
    subarray : str
        The data's subarray.

    Returns
    -------
    ndarray (ntemplates, ny, nx) of float32
    """
    items = read_image_arrays(path, "override_bkg")
    # FITS: the image extensions, or the primary HDU alone.
    arrays = [a for name, a in items if name != "PRIMARY"] or [a for _, a in items]
    stack = []
    for array in arrays:
        array = np.squeeze(array)
        stack.extend(array if array.ndim == 3 else [array])
    if subarray != "SUBSTRIP256":
        stack = [_in_frame(t, shape, subarray) for t in stack]
    for template in stack:
        _check_template(template, shape, path)
    if not stack:
        raise ValueError(f"Background template {path} holds no image.")
    return np.stack(stack).astype(np.float32)


def load_template(path, shape):
    """Read a single 2-D background template (see `load_templates`).

    Parameters
    ----------
    path : str or Path
    shape : tuple of int

    Returns
    -------
    ndarray (ny, nx) of float32
    """
    stack = load_templates(path, shape)
    if len(stack) != 1:
        raise ValueError(
            f"Background template {path} holds {len(stack)} templates; give a file with "
            "exactly one, or use load_templates for a library."
        )
    return stack[0]


def _in_frame(template, shape, subarray):
    """A template of ``subarray``'s own shape placed in the frame (NaN elsewhere)."""
    if template.shape != subarray_shape(subarray):
        return template
    frame = np.full(shape, np.nan, np.float32)
    frame[subarray_rows(subarray)] = template
    return frame


def _check_template(template, shape, path):
    if template.shape != tuple(shape):
        hint = ""
        if template.ndim == 2 and template.shape[0] == 96:
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
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = frame / template
    ratio = ratio[np.isfinite(ratio) & (template > 0)]
    if ratio.size < 10:
        raise ValueError(
            f"The background region has only {ratio.size} usable pixels; choose a "
            "source-free box where the template is positive."
        )
    return float(trimmed_median(ratio, percentiles))


def trimmed_median(values, percentiles=(10.0, 90.0)):
    """Median of the values between two percentiles, along the last axis.

    Parameters
    ----------
    values : ndarray (..., n)
        NaN values are ignored.
    percentiles : pair of float

    Returns
    -------
    float or ndarray (...)
    """
    lo, hi = percentiles
    if not 0 <= lo < hi <= 100:
        raise ValueError(
            f"Background percentiles {list(percentiles)} must satisfy 0 <= low < high <= 100."
        )
    with np.errstate(invalid="ignore"):
        low, high = np.nanpercentile(values, [lo, hi], axis=-1, keepdims=True)
        kept = np.where((values >= low) & (values <= high), values, np.nan)
        return np.nanmedian(kept, axis=-1)


def locate_step(template, rows=slice(200, 252), margin=20):
    """Column of the background step: the largest jump of the template's row median.

    Parameters
    ----------
    template : ndarray (ny, nx)
    rows : slice
        Rows whose median profile is used (away from the traces).
    margin : int
        Columns ignored at each edge (reference pixels, edge effects).

    Returns
    -------
    int
        First column right of the step.
    """
    profile = np.nanmedian(template[rows], axis=0)
    # A 5-column mean smooths pixel noise; the real step ramps over ~10 columns.
    jump = np.abs(np.convolve(np.diff(profile), np.ones(5) / 5, mode="same"))
    jump[:margin] = jump[-margin:] = 0
    return int(np.nanargmax(jump)) + 1


def fit_background(frames, templates, boxes, step, percentiles=(10.0, 90.0), separate=True,
                   halo=None):
    """Best template and its scale(s) on each side of the step.

    Parameters
    ----------
    frames : ndarray (n, ny, nx) or (ny, nx)
        Data (a deep frame, or every integration for per-integration scales).
    templates : ndarray (ntemplates, ny, nx)
    boxes : sequence of pairs of slices
        Source-free regions (rows, cols): the first left of ``step``, the
        second right of it.
    step : int
        First column right of the step.
    percentiles : pair of float
        Range of data/template ratios kept before the median.
    separate : bool
        One scale per side; otherwise one scale from both regions.
    halo : ndarray (ny, nx), optional
        Star light in the regions that is not background (the fitted halo,
        see `jwst_soss_custom.background.halo.fit_halo`); it is removed from
        the frames before the ratios are taken.

    Returns
    -------
    index : int
        Chosen template (the smallest median absolute residual over the
        regions of the exposure-median scaled template).
    scales : ndarray (n, 2) or (2,)
        Scale left and right of the step (equal if not ``separate``).
    """
    frames = np.asarray(frames)
    single = frames.ndim == 2
    frames = frames[None] if single else frames
    for rows, cols in boxes:
        if cols.start < step < cols.stop:
            raise ValueError(
                f"Background region columns {cols.start}-{cols.stop} straddle the step "
                f"at column {step}; move the region or set step_column."
            )
    regions = []
    for rows, cols in boxes:
        region = frames[:, rows, cols]
        regions.append(region if halo is None else region - halo[rows, cols])
    best = None
    for k, template in enumerate(templates):
        ratios, residual = [], []
        for region, (rows, cols) in zip(regions, boxes):
            t = template[rows, cols].ravel()
            good = np.isfinite(t) & (t > 0)
            if good.sum() < 10:
                raise ValueError(
                    f"Background region rows {rows.start}-{rows.stop}, columns "
                    f"{cols.start}-{cols.stop} has only {good.sum()} usable template "
                    "pixels; choose a source-free region where the template is positive."
                )
            with np.errstate(divide="ignore", invalid="ignore"):
                ratios.append(region.reshape(len(frames), -1)[:, good] / t[good])
        if separate:
            scales = np.stack([trimmed_median(r, percentiles) for r in ratios], axis=-1)
        else:
            scales = np.repeat(trimmed_median(np.hstack(ratios), percentiles)[:, None], 2, axis=1)
        for side, (region, (rows, cols)) in enumerate(zip(regions, boxes)):
            model = np.median(scales[:, side]) * template[rows, cols]
            residual.append(np.abs(np.median(region, axis=0) - model).ravel())
        cost = np.nanmedian(np.concatenate(residual))
        if best is None or cost < best[0]:
            best = (cost, k, scales)
    if not np.isfinite(best[2]).all():
        raise ValueError("The background regions hold no finite data; check the input.")
    return best[1], best[2][0] if single else best[2]


def fit_background_and_halo(deep, templates, boxes, step, percentiles=(10.0, 90.0),
                            separate=True, frames=None, halo=True, halo_power=None,
                            halo_distance=30, threshold=0.25, halo_fixed=None):
    """Best template, its scales with the star's halo taken out, and the halo.

    The template is chosen and scaled on the deep frame (`fit_background`);
    the halo is then fitted on the deep frame with that template
    (`jwst_soss_custom.background.halo.fit_halo`) and removed from the
    regions before the scales are measured again, on the deep frame or on
    every integration. The halo is star light: it is only modelled here,
    never subtracted from the data.

    Parameters
    ----------
    deep : ndarray (ny, nx)
        Deep frame (median over time), NaN where unusable. Without ``halo``
        only the regions' rows are used.
    templates : ndarray (ntemplates, ny, nx)
    boxes : sequence of pairs of slices
        Scale regions (rows, cols), left then right of ``step``.
    step : int
        First column right of the step.
    percentiles : pair of float
        Range of data/template ratios kept before the median.
    separate : bool
        One scale per side.
    frames : ndarray (nints, ny, nx), optional
        Every integration, for per-integration scales; None measures the
        scales on ``deep``.
    halo : bool
        Model the halo; False scales the template to all the light in the
        regions.
    halo_power : float or None
        Fixed power of the halo's fall-off; None fits it.
    halo_distance : int
        Rows from the star light within which pixels are left out of the
        halo fit.
    threshold : float
        Star-light threshold of the halo source, as a fraction of the
        background (`jwst_soss_custom.background.halo.star_light`).
    halo_fixed : pair of float or None
        ``(power, amplitude)`` of a halo taken as known rather than fitted
        (`jwst_soss_custom.background.halo.fit_halo`).

    Returns
    -------
    index : int
        Chosen template.
    scales : ndarray (2,) or (nints, 2)
        Background scales left and right of the step.
    halo_fit : HaloFit or None
        The fitted halo (None without ``halo``).
    """
    index, scales = fit_background(deep, templates, boxes, step, percentiles, separate)
    halo_fit = None
    if halo:
        halo_fit = fit_halo(
            deep, templates[index], scales, step, power=halo_power,
            distance=halo_distance, separate=separate, threshold=threshold,
            fixed=halo_fixed,
        )
    if halo or frames is not None:
        _, scales = fit_background(
            deep if frames is None else frames,
            templates[index : index + 1],
            boxes,
            step,
            percentiles,
            separate,
            halo=None if halo_fit is None else halo_fit.image,
        )
    return index, scales, halo_fit


def background_model(template, scales, step):
    """Template scaled separately left and right of the step.

    Parameters
    ----------
    template : ndarray (ny, nx)
    scales : ndarray (2,) or (n, 2)
    step : int

    Returns
    -------
    ndarray (ny, nx) or (n, ny, nx) of float32
    """
    scales = np.asarray(scales, np.float32)
    side = (np.arange(template.shape[1]) >= step).astype(np.intp)
    per_column = scales[..., side]  # (nx,) or (n, nx)
    return per_column[..., None, :] * template


def subtract_background(data, template, scale, step=None, chunk=32):
    """Subtract the scaled template from every integration, in place.

    Parameters
    ----------
    data : ndarray (nints, ny, nx) of float32
    template : ndarray (ny, nx)
    scale : float, ndarray (nints,), (2,) or (nints, 2)
        One scale, one per integration, or left/right of ``step`` (per
        integration or not).
    step : int or None
        Step column, required for left/right scales.
    chunk : int
        Integrations at a time (bounds the temporary model cube).
    """
    scale = np.asarray(scale, dtype=np.float32)
    if step is None:
        data -= scale.reshape(-1, 1, 1) * template
        return
    if scale.ndim == 1:
        data -= background_model(template, scale, step)
        return
    for start in range(0, data.shape[0], chunk):
        rows = slice(start, start + chunk)
        data[rows] -= background_model(template, scale[rows], step)
