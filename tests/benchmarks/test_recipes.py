import json

import pytest
from recipes import chosen_recipe, recipe_tables, summarise_recipes
from results_page import write_docs

from keras_gcnprune.bench.results import save_results


def run(dataset, recipe, validation, test, weights=1000, protocol="a"):
    return {"dataset": dataset, "recipe": recipe, "protocol": protocol, "seed": 0,
            "validation": validation, "test": test, "weights": weights, "macs": 2 * weights,
            "epochs": 80, "train_time_s": 10.0}


RECORDS = [run("msr", "default", 0.70, 0.80), run("msr", "default", 0.74, 0.84, protocol="b"),
           run("msr", "bone_only", 0.80, 0.78), run("msr", "bone_only", 0.80, 0.82, protocol="b"),
           run("sbu", "default", 0.90, 0.90), run("sbu", "bone_only", 0.88, 0.95),
           run("sbu", "crop", 0.99, 0.50)]  # crop: on one dataset only
SETTINGS = {"model": "stgcn", "datasets": ["msr", "sbu"], "recipes": "default,bone_only,crop",
            "ensembles": None, "seeds": 1, "epochs": 80, "frames": 32, "prune": None,
            "validation": 0.1, "note": None}


def test_rows_are_means_and_spreads_over_protocols_with_leads_over_default():
    rows = {(r["dataset"], r["recipe"]): r for r in summarise_recipes(RECORDS)}
    bone = rows[("msr", "bone_only")]
    assert (bone["runs"], bone["validation"], bone["test"]) == (2, pytest.approx(80.0),
                                                                 pytest.approx(80.0))
    assert bone["test_std"] == pytest.approx(2.0)
    assert bone["validation_lead"] == pytest.approx(8.0)  # against default's 72
    assert bone["test_lead"] == pytest.approx(-2.0)  # against default's 82
    assert rows[("msr", "default")]["validation_lead"] == pytest.approx(0.0)


def test_the_recipe_chosen_is_the_best_validation_over_every_dataset_it_ran_on():
    chosen, averages = chosen_recipe(summarise_recipes(RECORDS))
    assert chosen == "bone_only"  # (80 + 88) / 2 = 84 against default's (72 + 90) / 2 = 81
    assert averages == pytest.approx({"default": 81.0, "bone_only": 84.0})
    assert "crop" not in averages  # best validation on sbu, but measured on one dataset


def test_tables_mark_each_datasets_best_validation_and_name_its_published_numbers():
    text = recipe_tables(summarise_recipes(RECORDS))
    assert text.startswith("**Chosen on validation: `bone_only`** (validation averaged over "
                           "the datasets: bone_only 84.00, default 81.00).")
    assert "| **bone_only** | 1,000 | 2,000 | 80 | 80.00 ± 0.00 (+8.00) | 80.00 ± 2.00 " \
        "(-2.00) | 10 |" in text
    assert "| **crop** |" in text and "| bone_only | 1,000 |" in text  # sbu's best is crop
    assert "Best on validation: `crop`, 50.00 ± 0.00 on test (1 runs, 1,000 weights). " \
        "Published: graph and attention models reach about 98-99%" in text
    assert "LiteRT" not in text
    timed = [{**row, "latency_ms": 0.5, "latency_ratio": 1.0}
             for row in summarise_recipes(RECORDS)]
    assert "| 10 | 0.500 | 1.00x |" in recipe_tables(timed)


def test_the_results_page_has_a_section_for_recipe_results(tmp_path):
    rows = summarise_recipes(RECORDS)
    settings = {**SETTINGS, "note": "A note on these runs."}
    out = tmp_path / "recipes"
    save_results(out, "recipes", "python benchmarks/dense_quality.py x", settings,
                 recipe_tables(rows), records=RECORDS, summary=rows)
    text = write_docs([out], tmp_path / "docs" / "results.md").read_text()
    assert "## Training recipes, stgcn, dense: MSR Action3D, SBU Kinect Interaction" in text
    assert "Model `stgcn`, 32 frames, 1 seed(s)" in text and "(10%, whole subjects" in text
    assert "Command: `python benchmarks/dense_quality.py x`" in text
    assert "A note on these runs." in text and "### msr" in text
    assert "Raw results: [results/recipes/results.json](results/recipes/results.json)" in text
    copied = tmp_path / "docs" / "results" / "recipes" / "results.json"
    assert json.loads(copied.read_text())["benchmark"] == "recipes"


def test_a_page_regenerates_from_the_copies_it_made(tmp_path):
    out = tmp_path / "recipes"
    rows = summarise_recipes(RECORDS)
    save_results(out, "recipes", "x", SETTINGS, recipe_tables(rows), records=RECORDS,
                 summary=rows)
    first = write_docs([out], tmp_path / "docs" / "results.md").read_text()
    copies = tmp_path / "docs" / "results" / "recipes"
    assert write_docs([copies], tmp_path / "docs" / "results.md").read_text() == first
