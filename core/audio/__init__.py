"""Sound in, numbers out: decoding and checking audio, features, the synth.

- `io`        decoding (soundfile, ffmpeg fallback), validation of uploads, resampling, levels
- `features`  FeatureConfig and the STFT / log-mel / MFCC transforms (nn.Modules)
- `synth`     the additive ADSR synth: (pitch, start, steps) notes -> waveform

Layering: depends only on torch, torchaudio, numpy and soundfile; everything else builds on it.
"""
