"""Networks as data: specs, ready-made presets, model cards and export.

- `spec`         ModelSpec / LayerSpec (a network as data) and their JSON
- `layers`       the layer catalogue: kinds, parameters, limits
- `shapes`       infer_shapes: shapes, parameters, multiply-adds and formulas without torch
- `build`        build_model: the nn.Module (SpecNetwork, EnsembleNetwork)
- `codegen`      spec_to_code: the same network as standalone PyTorch code
- `presets`      ready-made specs (mlp_2d, mlp_mfcc, cnn_logmel, crnn_logmel)
- `card`         ModelCard: what a trained model knows and how well, measured how
- `onnx_export`  network + softmax to ONNX, with the input recipe in its metadata

Layering: depends on torch only (and `core.audio` for shapes); used by training and inference.
"""
