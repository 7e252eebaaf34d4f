"""Reports on pruned models: sparsity and connectivity per layer, as tables, JSON and figures."""

from keras_gcnprune.reports.connectivity import (
    LayerReport,
    connectivity_report,
    format_table,
    plot_report,
)

__all__ = ["LayerReport", "connectivity_report", "format_table", "plot_report"]
