from .flux_multi_head import AlignDecoder, FluxMultiHead

__all__ = ['AlignDecoder', 'FluxMultiHead']
