"""profiler: on-device latency profiler for neural architecture search.

Generates one small model per candidate module of a search space, benchmarks them on a
target (the host, or Snapdragon phones over adb with SNPE), aggregates latency tables and
fits the standalone ``estimator.py`` a NAS loop imports.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
