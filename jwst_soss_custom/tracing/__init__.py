"""Trace positions and wavelengths of the SOSS orders, refined on the data."""

from .tracing import MODEL_ATTRIBUTE, OrderTrace, TraceSolution, predict_traces
from .tracing_step import ORDER0_ATTRIBUTE, SossTracingStep, traces_for

__all__ = [
    "MODEL_ATTRIBUTE",
    "ORDER0_ATTRIBUTE",
    "OrderTrace",
    "SossTracingStep",
    "TraceSolution",
    "predict_traces",
    "traces_for",
]
