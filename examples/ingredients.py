#!/usr/bin/env python
"""Ingredients: reusable parts with their own config (under ``config[<path>]``).

    python examples/ingredients.py
    python examples/ingredients.py with dataset.filename=other.csv dataset.normalize=False
    python examples/ingredients.py with dataset.small
"""
from labbook import Experiment, Ingredient

dataset = Ingredient("dataset")


@dataset.config
def dataset_config():
    filename = "data.csv"  # where the data lives
    normalize = True


@dataset.named_config
def small():
    filename = "small.csv"


@dataset.capture
def load_data(filename, normalize):
    rows = [1.0, 2.0, 3.0, 4.0]
    if normalize:
        total = sum(rows)
        rows = [r / total for r in rows]
    return filename, rows


ex = Experiment("ingredients", ingredients=[dataset])


@ex.config
def cfg(dataset):
    # the experiment's config can read its ingredients' config
    report = "loading " + dataset["filename"]


@ex.automain
def main(report):
    print(report)
    filename, rows = load_data()
    print(filename, [round(r, 3) for r in rows])
    return len(rows)
