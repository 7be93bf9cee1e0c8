"""The package's ground floor: facts every other module shares.

Detector geometry and the reference-pixel layout (`geometry`), the DQ flags
the numerical cores use as a plain mapping (`dq`), the one way to find
package data and the order-3 trace read from it (`data`), and the input
exception (`errors`). Both the pipeline and the simulator import from here;
nothing here imports from the rest of the package.
"""
