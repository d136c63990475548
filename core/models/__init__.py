"""Networks as data: specs, ready-made presets, model cards and export.

- `spec`         ModelSpec / LayerSpec: shape inference, build_model, generated PyTorch code, JSON
- `presets`      ready-made specs (mlp_2d, mlp_mfcc, cnn_logmel, crnn_logmel)
- `card`         ModelCard: what a trained model knows and how well, measured how
- `onnx_export`  network + softmax to ONNX, with the input recipe in its metadata

Layering: depends on torch only (and `core.audio` for shapes); used by training and inference.
"""
