"""The model registry: `versions` (register a variant run, promote, list, history, in MLflow's
Model Registry), `gates` (the rules a promotion must pass), `registration` (what a run
registers and promotes when it ends)."""
