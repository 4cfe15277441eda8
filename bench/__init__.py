"""ratingbench: train every rating predictor on identical chronological splits and say,
with confidence intervals, which one is really better."""

__version__ = "0.1.0"
