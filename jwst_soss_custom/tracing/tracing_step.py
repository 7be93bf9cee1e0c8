"""stpipe Step: trace positions and wavelengths from the pupil-wheel position."""

import logging

from jwst_soss_custom.exposure import check_soss_model
from jwst_soss_custom.stpipe import SossStep

from .tracing import MODEL_ATTRIBUTE, TraceSolution, predict_traces

__all__ = ["SossTracingStep", "traces_for"]

log = logging.getLogger(__name__)


class SossTracingStep(SossStep):
    """Locate the orders on the detector and attach the solution to the model.

    The trace centres and wavelengths of orders 1 and 2 come from pastasoss for
    the exposure's PWCPOS. The solution is stored on the output model as the
    ``soss_traces`` attribute (see `TraceSolution`), where the 1/f and
    extraction steps find it, and can be written as an ECSV table.
    """

    class_alias = "soss_tracing"

    spec = """
    orders = int_list(default=list(1, 2))  # spectral orders to trace (pastasoss models 1 and 2)
    save_traces = boolean(default=False)  # write the trace table as <root>_traces.ecsv
    suffix = string(default='tracing')  # suffix of the saved model
    """  # noqa: E501

    def process(self, input_data):
        """Attach the trace solution to a rateints/calints model.

        Parameters
        ----------
        input_data : str or CubeModel
            SOSS rateints or calints.

        Returns
        -------
        CubeModel
            The input with ``soss_traces`` set.
        """
        model = self.prepare_output(input_data)
        check_soss_model(model)
        solution = predict_traces(
            model.meta.instrument.pupil_position, self.orders, model.data.shape[-1]
        )
        for order, trace in solution.orders.items():
            cols = trace.columns
            log.info(
                "Order %d: %d columns on the detector, %.3f-%.3f um",
                order,
                cols.size,
                trace.wavelength[cols].min(),
                trace.wavelength[cols].max(),
            )
        setattr(model, MODEL_ATTRIBUTE, solution.to_tree())
        if self.save_traces:
            path = self.make_output_path(basepath=model.meta.filename, suffix="traces", ext="ecsv")
            solution.to_table().write(path, format="ascii.ecsv", overwrite=True)
            log.info("Saved trace table %s", path)
        self.record_step_status(model)
        return model


def traces_for(model):
    """The trace solution of a model, predicted from PWCPOS if it has none.

    Parameters
    ----------
    model : CubeModel
        SOSS rateints/calints, possibly processed by `SossTracingStep`.

    Returns
    -------
    TraceSolution
    """
    tree = getattr(model, MODEL_ATTRIBUTE, None)
    if tree is not None:
        return TraceSolution.from_tree(tree)
    log.info("No trace solution on the input: predicting it from PWCPOS with pastasoss.")
    return predict_traces(model.meta.instrument.pupil_position, ncols=model.data.shape[-1])
