"""Measuring models and their samples: perplexities, MAUVE, the judge LM."""
