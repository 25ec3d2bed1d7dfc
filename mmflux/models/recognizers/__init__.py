from .flux_recognizer import FluxRecognizer

__all__ = ['FluxRecognizer']
