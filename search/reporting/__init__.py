"""What a search leaves behind: the trial records, leaderboard, best specs and Pareto plot
(:mod:`search.reporting.results`), and the best candidates retrained stand-alone (:mod:`search.reporting.retrain`)."""
