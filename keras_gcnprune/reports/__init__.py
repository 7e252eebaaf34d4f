"""Reports on pruned models: pruning rate and connectivity per layer, as tables, JSON, figures and
TensorBoard scalars."""

from keras_gcnprune.reports.connectivity import (
    LayerReport,
    connectivity_report,
    format_table,
    plot_report,
)
from keras_gcnprune.reports.costs import model_costs
from keras_gcnprune.reports.summaries import PruningSummaries

__all__ = ["LayerReport", "PruningSummaries", "connectivity_report", "format_table",
           "model_costs", "plot_report"]
