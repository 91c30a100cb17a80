"""Recipes: the commands that chain the stages, each read top to bottom: `train` (train -> finish the run
folder -> export -> analysis and report), `crossfit` (k teachers, each without one fold of train) and `distill`
(the teachers' probabilities a student learns from)."""
