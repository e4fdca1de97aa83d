"""Evaluators: answer sets (read or generated with diffusers), scoring with judges, suite tables."""

from canvasdata.evaluate.answers import Answer, parse_answer_name, read_answer_folder, read_answers
from canvasdata.evaluate.score import parse_forget, score_answers
from canvasdata.evaluate.suite import score_suite

__all__ = ["Answer", "parse_answer_name", "parse_forget", "read_answer_folder", "read_answers", "score_answers",
           "score_suite"]
