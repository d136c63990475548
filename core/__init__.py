"""Audio DL Studio's library: models, training, devices, audio I/O and features, analysis.

Nothing in core imports streamlit: every function here can be used from a script, a CLI or a
test exactly as the pages use it.
"""
