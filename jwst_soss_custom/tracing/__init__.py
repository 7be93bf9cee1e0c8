"""Trace positions and wavelengths of the SOSS orders."""

from .tracing import MODEL_ATTRIBUTE, OrderTrace, TraceSolution, predict_traces
from .tracing_step import SossTracingStep, traces_for

__all__ = [
    "MODEL_ATTRIBUTE",
    "OrderTrace",
    "SossTracingStep",
    "TraceSolution",
    "predict_traces",
    "traces_for",
]
