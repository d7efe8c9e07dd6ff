"""Reporting: everything that reads what a run wrote, and nothing that trains.

A run's results file, its step log, tables, plots, the PDF report, live curves and comparisons
over seeds.
"""
