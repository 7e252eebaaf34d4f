"""Reports on pruned models: sparsity and connectivity per layer, as tables, JSON and figures."""

from keras_gcnprune.reports.connectivity import (
    LayerReport,
    connectivity_report,
    format_table,
    plot_report,
)
from keras_gcnprune.reports.costs import model_costs

__all__ = ["LayerReport", "connectivity_report", "format_table", "model_costs", "plot_report"]
