"""vemu: where a server's cycles go under virtualization, and what offload buys back."""
import os as _os

# vemu needs no BLAS; OpenBLAS's idle threads otherwise spin beside the engine and take a
# core's worth of time on small machines. Only effective if numpy was not imported yet.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    _os.environ.setdefault(_var, "1")

__version__ = "0.1.0"
