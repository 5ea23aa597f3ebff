"""The sandbox: an offline synthetic world where the truth is known.

``world`` draws prompts with ground truth, ``grammar`` renders and parses responses,
``gold`` grades them against the sandbox spec's rubrics, ``raters`` simulates human raters
with configurable biases, ``judge`` stands in for a position-biased AI judge and ``pairs``
measures how raters relate to the gold preference.
"""
