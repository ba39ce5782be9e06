"""Calibration: models (scale-and-bias, per-op), k-fold validation and metrics, the report, estimator.py code generation."""
