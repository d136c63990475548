"""The tensor playground's logic: ranks, matrix products step by step, broadcasting, memory and
aliasing experiments, dtype conversions and generators. No streamlit here.

Modules: `ranks` (build and describe tensors), `matmul` (shape rules and the cell-by-cell
product), `broadcasting` (the aligned-from-the-right explanation and an audible per-band gain),
`memory` (names, storage, views and copies), `conversions` (what each dtype change loses),
`generators` (a frame generator to step with next(), lazy versus eager, DataLoader batches).
"""
