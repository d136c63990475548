"""Training a classifier: the trainer, the run store, evaluation, DDP, export of a script.

- `config`         TrainConfig (what defines a run) and TrainEvent (what it reports)
- `trainer`        the train() generator (one step at a time)
- `runs`           the run store: every run as a folder of JSON and safetensors
- `evaluate`       per-class metrics, confusion, embeddings with PCA / t-SNE
- `ddp`            torchrun / DistributedDataParallel helpers
- `support`        helpers the Train page needs around the trainer (subsets, folders, rows)
- `export_script`  a standalone script that trains a run again

The command line is `python -m core.train` (core/train.py). Layering: builds on
`core.audio`,
`core.data` and `core.models`; `core.jobs` runs it on workers.
"""
