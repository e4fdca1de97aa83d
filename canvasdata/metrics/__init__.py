"""Metrics as pure functions on arrays: UA/IRA/CRA and the residual rate, Frechet distance, KID."""

from canvasdata.metrics.accuracy import RequestScores, aggregate, per_class_accuracy, request_scores, residual_rate
from canvasdata.metrics.frechet import frechet_distance, frechet_from_statistics, kid, statistics

__all__ = ["RequestScores", "aggregate", "frechet_distance", "frechet_from_statistics", "kid", "per_class_accuracy",
           "request_scores", "residual_rate", "statistics"]
