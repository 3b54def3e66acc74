"""Every error llmflow defines lives in llmflow.errors and is drawn in its module docstring."""

from __future__ import annotations

import importlib
import pkgutil
import re

import pytest

import llmflow
from llmflow import errors

SKIPPED = {"llmflow.serving.model_script", "llmflow.__main__"}  # run as scripts, not imported


def _all_errors() -> set[type]:
    for module in pkgutil.walk_packages(llmflow.__path__, "llmflow."):
        if module.name not in SKIPPED:
            importlib.import_module(module.name)
    found, todo = set(), [errors.LlmflowError]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub.__module__.startswith("llmflow.") and sub not in found:
                found.add(sub)
                todo.append(sub)
    return found


def test_every_llmflow_error_is_defined_in_errors_and_drawn_in_the_tree():
    drawn = set(re.findall(r"[├└]── (\w+)", errors.__doc__))
    for error in _all_errors():
        assert error.__module__ == "llmflow.errors", f"{error.__qualname__} in {error.__module__}"
        assert error.__name__ in drawn, f"{error.__name__} is not in the errors.py tree"


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("llmflow.runner", "BudgetExhausted"),
        ("llmflow.registry.versions", "PromotionRefused"),
        ("llmflow.experiment", "Interrupted"),
    ],
)
def test_old_import_places_are_the_same_class(module: str, name: str):
    # `except registry.PromotionRefused` and the like keep catching what is raised
    assert getattr(importlib.import_module(module), name) is getattr(errors, name)
