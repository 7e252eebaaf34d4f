"""Every docstring example of the package runs and shows what it says. As in Keras' own
docstrings, examples take `np` (NumPy) and `keras` as imported."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import keras
import numpy as np
import pytest

import keras_gcnprune
import keras_gcnprune.cli  # the `cli/` folder, installed as this sub-package

MODULES = sorted({module.name for package in (keras_gcnprune, keras_gcnprune.cli)
                  for module in pkgutil.walk_packages(package.__path__, f"{package.__name__}.")})


def test_the_package_has_docstring_examples():
    examples = sum(len(test.examples) for name in MODULES
                   for test in doctest.DocTestFinder().find(importlib.import_module(name)))
    assert examples > 50


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in doctest.DocTestFinder().find(module, extraglobs={"np": np, "keras": keras}):
        runner.run(test)
    failed, attempted = runner.summarize(verbose=False)
    assert failed == 0, f"{failed} of {attempted} docstring examples of {name} failed (above)"
