"""Evaluation that does not come from the guiding models: model-free metrics of a completion
(``metrics``) and the statistics a table reports with them (``stats``: bootstrap intervals,
paired win rates). Pure functions over lists and numbers; no model, no database.
"""
