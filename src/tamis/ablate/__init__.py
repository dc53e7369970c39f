"""Proxy-model ablations: run pipeline variants, sample an equal token budget from each, evaluate, compare."""

from tamis.ablate.evaluator import (
    EvalInput,
    Evaluator,
    EvaluatorError,
    available_evaluators,
    get_evaluator_class,
    register_evaluator,
)
from tamis.ablate.runner import AblationResult, run_ablation
from tamis.ablate.spec import AblationError, AblationSpec, load_ablation, parse_ablation

__all__ = [
    "AblationError",
    "AblationResult",
    "AblationSpec",
    "EvalInput",
    "Evaluator",
    "EvaluatorError",
    "available_evaluators",
    "get_evaluator_class",
    "load_ablation",
    "parse_ablation",
    "register_evaluator",
    "run_ablation",
]
