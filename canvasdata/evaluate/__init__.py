"""Evaluators: answer sets (read, or generated with diffusers), scoring with judges under a named
protocol (`unlearncanvas`, the original code's choices, or `canvasdata`), suite tables, concept-set
evaluation. `commands` holds the CLI's argument-level entry points."""

from canvasdata.evaluate.answers import Answer, parse_answer_name, read_answer_folder, read_answer_shards, read_answers
from canvasdata.evaluate.protocol import PROTOCOLS, Protocol, get_protocol
from canvasdata.evaluate.score import Report, parse_forget, run_judges, score_answers
from canvasdata.evaluate.suite import Suite, score_suite

__all__ = ["Answer", "PROTOCOLS", "Protocol", "Report", "Suite", "get_protocol", "parse_answer_name", "parse_forget",
           "read_answer_folder", "read_answer_shards", "read_answers", "run_judges", "score_answers", "score_suite"]
