"""Training: one update, the loop (binary and two-pass SM), batches, data parallelism, fine-tuning, continued
pretraining and the dry run of a recipe."""
