"""The maths and the small pieces everything else stands on: errors, checked settings, the soft-masking operator,
noise schedules, unmasking rules, hook points, the Trace, progress bars and precision. Imports nothing of smkit above it."""
