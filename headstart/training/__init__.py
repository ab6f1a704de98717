"""Training with torch: data, models, lanes, regularisers, checkpoints, pretraining and the race engine."""
