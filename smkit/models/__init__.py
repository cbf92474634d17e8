"""The denoiser and its backbones: mask id, SUBS, SoftMask and the MDLM loss around a network that takes
`inputs_embeds`. No file I/O here: `smkit.io` reads and writes models."""
