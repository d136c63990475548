"""The teaching experiments behind the lesson pages (each small, exact and tested).

- `playground2d`      "see the function": 2-D data, a small network, its neurons
- `depth_experiment`  "deep enough": accuracy against depth and against parameter count
- `layer_values`      a network as a composition: x, f1(x), f2(f1(x)), ... for one clip
- `unsupervised`      sound collections, embeddings, PCA / t-SNE, clustering, an autoencoder
- `rl`, `rl_stochastic`  bandits and the melody world, deterministic and slippery

The tensor lessons live in `core.tensors`. Layering: builds on the rest of core; nothing
in core imports the lessons.
"""
