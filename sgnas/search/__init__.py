"""Search baselines over a trained supernet: random search and the SPOS evolutionary search."""

from .evaluator import InheritedAccuracy, build_evaluator
from .evolution import EvolutionConfig, crossover, evolution_search, mutate, sample_layer
from .random_search import check_target, random_search, sample_under
from .result import SearchResult

__all__ = [
    "EvolutionConfig",
    "InheritedAccuracy",
    "SearchResult",
    "build_evaluator",
    "check_target",
    "crossover",
    "evolution_search",
    "mutate",
    "random_search",
    "sample_layer",
    "sample_under",
]
