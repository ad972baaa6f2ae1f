"""Markdown tables for the eval reports: one cell format, one table layout."""
from __future__ import annotations


def fmt(v) -> str:
    """A report cell: – for nothing, yes/no, three decimals for a float."""
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)


def md_table(header: list[str], rows: list[list]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(out + ["| " + " | ".join(fmt(c) for c in r) + " |" for r in rows])
