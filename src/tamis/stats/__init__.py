"""Counters of a run: declared names, summed exactly across tasks and reruns."""
