"""The one set of latency key names (every stage and target reads them from here).

``Forward Propagate`` and ``Total Inference Time`` are timed around each call; ``Layers Time``
is the sum of the per-layer times a runtime's own profiler reports. Their exact definition
per target is in ``docs/design.md``.
"""

FORWARD_PROPAGATE = "Forward Propagate"
TOTAL_INFERENCE = "Total Inference Time"
LAYERS_TIME = "Layers Time"
LATENCY_KEYS = (FORWARD_PROPAGATE, TOTAL_INFERENCE, LAYERS_TIME)
UNIT = "us"

__all__ = ["FORWARD_PROPAGATE", "LATENCY_KEYS", "LAYERS_TIME", "TOTAL_INFERENCE", "UNIT"]
