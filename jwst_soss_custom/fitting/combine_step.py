"""``soss_combine``: several visits' transmission spectra → one, with per-visit offsets."""

import logging
from pathlib import Path

from astropy.table import Table

from jwst_soss_custom._base.errors import SossInputError
from jwst_soss_custom.ecsv import write_ecsv
from jwst_soss_custom.exposure import read_association
from jwst_soss_custom.fitting.combine import (
    combine_visits,
    read_transmission,
    usable_channels,
)
from jwst_soss_custom.stpipe import SossStep

__all__ = ["SossCombineStep"]

log = logging.getLogger(__name__)

SUFFIX = "_transmission.ecsv"


class SossCombineStep(SossStep):
    """Combine the transmission spectra of several visits of one planet.

    Input: an association (``asn_from_list -o combine_asn.json --product-name
    wasp39b *_transmission.ecsv``) or a list of ``<product>_transmission.ecsv``
    files from ``soss_fit``, binned alike. Every channel's depth is the
    spectrum plus one offset per visit (``offsets``), solved together by
    weighted least squares (`~jwst_soss_custom.fitting.combine.combine_visits`).
    Writes ``<product>_transmission_combined.ecsv`` (the spectrum) and
    ``<product>_visit_offsets.ecsv`` (each visit's offset and its error),
    with ``save_plots`` a PNG of each visit shifted by its offset and the
    combination. Returns the spectrum. See ``docs/fitting.md``.
    """

    class_alias = "soss_combine"

    spec = """
    offsets = option("visit", "visit_order", "none", default="visit")  # free depth offsets: per visit, per visit and order, or none
    inflate_errors = boolean(default=True)  # scale the errors by sqrt(chi2_red) when the visits scatter more than their errors
    product_name = string(default=None)  # name of the products; None: the association's product, else 'combined'
    save_plots = boolean(default=False)  # write <product>_transmission_combined.png
    output_ext = string(default=".ecsv")  # product tables are ECSV
    """  # noqa: E501

    def process(self, input_data, *more_visits):
        """Combine the visits.

        Parameters
        ----------
        input_data : str, Path or list
            An association file, or the visits' transmission files (or tables).
        *more_visits : str or Path
            Further transmission files (``strun soss_combine a.ecsv b.ecsv``).

        Returns
        -------
        `~astropy.table.QTable`
            The combined spectrum.
        """
        paths, product = self._inputs(self.gather_inputs(input_data, more_visits))
        tables = [p if isinstance(p, Table) else read_transmission(p) for p in paths]
        names = [_visit_name(p, k) for k, p in enumerate(paths)]
        spectrum, offsets = combine_visits(tables, names, offsets=self.offsets,
                                           inflate=self.inflate_errors)
        product = self.product_name or product
        log.info("Combined %d visits (%s): %d channels, chi2_red %.2f, errors x%.2f.",
                 len(tables), ", ".join(names), len(spectrum), spectrum.meta["chi2_red"],
                 spectrum.meta["error_scale"])
        for row in offsets:
            log.info("Offset of %s%s: %+.1f +- %.1f ppm (%d channels)", row["visit"],
                     f" order {row['order']}" if row["order"] else "", row["offset_ppm"],
                     row["offset_error_ppm"], row["n_channels"])
        out_dir = Path(self.output_dir) if self.output_dir else Path.cwd()
        if self.save_results:
            out_dir.mkdir(parents=True, exist_ok=True)
            for table, suffix in ((spectrum, "transmission_combined"), (offsets, "visit_offsets")):
                write_ecsv(table, out_dir / f"{product}_{suffix}.ecsv")
                log.info("Saved %s", out_dir / f"{product}_{suffix}.ecsv")
        if self.save_plots:
            from jwst_soss_custom.plotting import save_figure
            from jwst_soss_custom.plotting.fitting import plot_combined

            usable = [t[usable_channels(t)] for t in tables]
            save_figure(plot_combined(usable, names, spectrum, offsets),
                        out_dir / f"{product}_transmission_combined.png")
        return spectrum

    def _inputs(self, input_data):
        """The visits' tables or files, and the product name."""
        if isinstance(input_data, (str, Path)) and str(input_data).lower().endswith(".json"):
            members, products = read_association(input_data, self.input_dir or None)
            return members, products[0] if products else "combined"
        if isinstance(input_data, (str, Path, Table)):
            input_data = [input_data]
        items = []
        for item in input_data:
            if not isinstance(item, Table):
                item = Path(item)
                if not item.is_file():
                    raise SossInputError(f"Input table {item} does not exist: give the visits' "
                                         f"<product>{SUFFIX} files or an association of them.")
            items.append(item)
        return items, "combined"


def _visit_name(item, index):
    """A visit's name: its file name without ``_transmission.ecsv``."""
    if isinstance(item, Table):
        return f"visit{index + 1}"
    name = Path(item).name
    return name[: -len(SUFFIX)] if name.endswith(SUFFIX) else Path(item).stem
