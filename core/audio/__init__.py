"""Sound in, numbers out: decoding and checking audio, features, the synth.

- `io`        load_audio / probe_audio: validation of uploads, mono, resampling, trimming
- `clip`      AudioClip, AudioInfo, AudioError and the decode limits
- `decoding`  the backends: sniffing a source, soundfile, the ffmpeg program
- `levels`    resampling, peak / RMS in dBFS, WAV encoding
- `features`  FeatureConfig and the STFT / log-mel / MFCC transforms (nn.Modules)
- `synth`     the additive ADSR synth: (pitch, start, steps) notes -> waveform

Layering: depends only on torch, torchaudio, numpy and soundfile; everything else builds on it.
"""
