"""Text tables of a run's results: the matrix for short streams, the curve for long ones."""

from __future__ import annotations

from lifelong.reporting.report import MAX_MATRIX_COLUMNS, matrix_table


def results_with(matrix: list[list[float]]) -> dict[str, object]:
    return {"protocols": {"class-il": {"matrix": matrix}}}


def test_short_streams_print_the_whole_matrix() -> None:
    text = matrix_table(results_with([[90.0, 10.0], [80.0, 70.0]]), "class-il")
    assert "column: tested experience" in text
    assert text.splitlines()[-1].split() == ["2", "80.0", "70.0"]


def test_long_streams_print_the_average_accuracy_after_each_experience() -> None:
    n = MAX_MATRIX_COLUMNS + 5
    # a shared test set: every column of a row holds the same accuracy, here 2 * (row + 1)
    matrix = [[2.0 * (i + 1)] * n for i in range(n)]
    text = matrix_table(results_with(matrix), "class-il")
    lines = text.splitlines()
    assert f"after each of {n} experiences" in lines[0]
    assert lines[1].split()[0] == "1-10" and lines[1].split()[1:3] == ["2.0", "4.0"]
    assert lines[-1].split() == ["21-25", "42.0", "44.0", "46.0", "48.0", "50.0"]
    # a triangular matrix: the average runs over the experiences seen so far only
    tri = [[50.0 if j <= i else 0.0 for j in range(n)] for i in range(n)]
    curve = matrix_table(results_with(tri), "class-il").splitlines()[1:]
    assert {value for line in curve for value in line.split()[1:]} == {"50.0"}
