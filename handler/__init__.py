"""Serving side of the cats-vs-dogs classifier: the shared image preprocessing, the runtime-neutral
inference core, and the thin TorchServe adapter."""
