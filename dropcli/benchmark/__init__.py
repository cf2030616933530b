"""dropcli benchmark: regularizers compared across workloads, each tuned with the same budget, with
aggregate statistics over workloads × seeds (rliable's: stratified bootstrap intervals, IQM, probability of
improvement, performance profiles).

    suite.py      the suite file's schema (torch-free): workloads, regularizers, protocol
    run.py        the plan, the benchmark folder, tuning and retraining each workload through tune
    folder.py     the benchmark folder's record and how far it is (read by `dropcli status`)
    aggregate.py  normalized scores and the statistics (numpy / scipy only)
    outputs.py    leaderboard.md / .tex and the CSVs
    figures.py    the figures (matplotlib)
"""
