"""Reading a study without torch: every study and trial attribute named once (``studies.attrs``), the rules a
reader shares (``studies.reader``: a trial's error and size, the best within the cap, Pareto ranks) and an
ablation's table (``studies.ablation``)."""
