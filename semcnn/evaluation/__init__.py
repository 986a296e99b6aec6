"""Evaluation: scores, session shifts, familiarity, plots and the report."""
