"""One-shot (weight-sharing) search over feature-network topologies: a supernet holds every node, edge and merge
of a topology search space, and runs one candidate's path at a time (:mod:`search.strategies.oneshot.supernet`); it
is trained inside EfficientDet by the training loop, one sampled candidate per step
(:mod:`search.strategies.oneshot.training`, :mod:`search.strategies.oneshot.sampling`), and read back with its
candidates' weights (:mod:`search.strategies.oneshot.checkpoint`)."""
