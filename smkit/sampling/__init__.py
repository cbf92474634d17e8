"""Decoding: the settings of a sampling call (`SamplingConfig`, checked once) and the one step loop."""
from .config import Plan, SamplingConfig
from .loop import Generation, Steps, generate, iter_steps
