"""The inference layer: predict, detect, embed and evaluate with saved models."""
