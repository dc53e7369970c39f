"""Pipeline steps: the base classes, the registry, and the built-in steps' registration."""

from tamis.steps.base import Annotator, Extractor, Filter, Formatter, Step, StepContext
from tamis.steps.registry import available_steps, get_step_class, register_filter, register_step

__all__ = [
    "Annotator",
    "Extractor",
    "Filter",
    "Formatter",
    "Step",
    "StepContext",
    "available_steps",
    "get_step_class",
    "register_filter",
    "register_step",
]
