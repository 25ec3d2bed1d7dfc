from .flux_recognizer import FluxRecognizer, soft_cross_entropy, soft_targets

__all__ = ['FluxRecognizer', 'soft_cross_entropy', 'soft_targets']
