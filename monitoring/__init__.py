"""Post-deployment monitoring: labelled batches against a live endpoint, drift, load and fault tests."""

from serving.paths import MONITORING_DIR as OUT_DIR  # noqa: F401 (the name the monitoring CLIs use)
