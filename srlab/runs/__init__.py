"""Everything around a training run: config checks, checkpoint callbacks and resume, plots, sweep summaries, W&B."""
