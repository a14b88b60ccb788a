"""How a search scores its candidates: ``proxy`` trains each one briefly (:mod:`search.strategies.proxy`);
``oneshot`` trains a weight-sharing supernet once and scores candidates with the weights they inherit
(:mod:`search.strategies.oneshot`)."""
