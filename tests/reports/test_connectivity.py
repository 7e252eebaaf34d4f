import json

from click.testing import CliRunner

from keras_gcnprune import models
from keras_gcnprune.cli.main import main
from keras_gcnprune.pruning import magnitude_mask, prunable_weights
from keras_gcnprune.reports import connectivity_report, format_table, plot_report


def pruned_stgcn(rate):
    model = models.build("stgcn", "sbu", num_classes=4, frames=8, widths=(8, 16),
                         strides=(1, 2))
    for weight in prunable_weights(model):
        weight.mask.assign(magnitude_mask(weight.kernel.numpy(), rate))
    return model


def test_report_counts_match_the_masks():
    model = pruned_stgcn(0.95)
    report = connectivity_report(model)
    weights = prunable_weights(model)
    assert [r["weight"] for r in report["layers"]] == [w.kernel.path for w in weights]
    for row, weight in zip(report["layers"], weights):
        assert row["kept"] == int(weight.mask.numpy().sum())
        assert row["weights"] == weight.mask.numpy().size
        assert 0 <= row["disconnected"] <= row["kept"]
        assert 0 <= row["dead_outputs"] <= row["output_channels"]
    total = report["total"]
    assert total["kept"] == sum(r["kept"] for r in report["layers"])
    assert total["disconnected_fraction"] > 0  # magnitude pruning at 95% wastes weights
    assert "total" in format_table(report)


def test_dense_model_has_no_dead_channels(tmp_path):
    report = connectivity_report(models.build("attention_gcn", "sbu", num_classes=4, frames=8))
    assert all(r["dead_outputs"] == r["dead_inputs"] == 0 for r in report["layers"])
    png = plot_report(report, tmp_path / "report.png")
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_report_command(tmp_path):
    model = pruned_stgcn(0.9)
    model.save(tmp_path / "model.keras")
    result = CliRunner().invoke(main, ["report", str(tmp_path), "--png",
                                       str(tmp_path / "r.png")])
    assert result.exit_code == 0, result.output
    assert "block1_gcn" in result.output and (tmp_path / "r.png").exists()
    assert "compacted model" in result.output
    as_json = CliRunner().invoke(main, ["report", str(tmp_path / "model.keras"), "--json"])
    report = json.loads(as_json.output[as_json.output.index("{"):])
    assert "disconnected_fraction" in report["total"]
    costs = report["costs"]
    assert costs["pruned"]["parameters"] < costs["dense"]["parameters"]
    assert costs["compacted"]["parameters"] <= costs["dense"]["parameters"]
    assert costs["pruned"]["macs"] < costs["dense"]["macs"]
