"""Metrics as pure functions on numpy arrays: UA/IRA/CRA from one residual rate, Frechet distance, KID."""

from canvasdata.metrics.accuracy import RequestScores, aggregate, per_class_accuracy, request_scores, residual_rate
from canvasdata.metrics.frechet import frechet_distance, frechet_from_statistics, statistics
from canvasdata.metrics.kid import kid, polynomial_mmd2

__all__ = ["RequestScores", "aggregate", "frechet_distance", "frechet_from_statistics", "kid", "per_class_accuracy",
           "polynomial_mmd2", "request_scores", "residual_rate", "statistics"]

# finer-scale FU/FR of a style x object combination; the neighbourhood split of in-domain retention
from canvasdata.metrics.finer import CombinationScores, combination_scores  # noqa: E402
from canvasdata.metrics.neighbours import Neighbourhood, cosine_similarity, nearest, split_retention  # noqa: E402

__all__ += ["CombinationScores", "Neighbourhood", "combination_scores", "cosine_similarity", "nearest",
            "split_retention"]
