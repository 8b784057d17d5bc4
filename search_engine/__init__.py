"""The search: opening a study, the hand designs, the trial queues and fair exploration, successive halving's rungs,
the trial adapter and its confirmation, the progress display, the Ray driver and its Tune hooks, the ablation's
variants. What a trial measures is ``objectives``; reading a finished study, ``studies``."""
