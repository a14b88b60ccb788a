"""What a search leaves behind: the trial records, leaderboard, best specs and Pareto plot
(:mod:`search.reporting.results`), and the best candidates retrained stand-alone (:mod:`search.reporting.retrain`)."""

from search.reporting.results import (
    LEADERBOARD,
    RESULT_FILES,
    TrialRecord,
    best_records,
    leaderboard_table,
    write_results,
)
from search.reporting.retrain import RETRAIN_DIR, RETRAIN_JSON, RETRAIN_TABLE, retrain_best

__all__ = [
    "TrialRecord",
    "best_records",
    "leaderboard_table",
    "write_results",
    "LEADERBOARD",
    "RESULT_FILES",
    "retrain_best",
    "RETRAIN_DIR",
    "RETRAIN_TABLE",
    "RETRAIN_JSON",
]
