from .flux_runner import FluxRunner

__all__ = ['FluxRunner']
