"""Meta-learning across speakers: the functional inner loop and the outer updates (FOMAML, Reptile, Meta-SGD, MAML)."""
