"""Deployment outside PyTorch: export a recognizer at a grid and budget, run it in a runtime.

``export_recognizer`` writes an ONNX or OpenVINO model with its JSON sidecar;
``build_runtime_model(path)`` loads it as ``clips -> (logits, kept)``;
``inference_exported(path, video)`` runs it on a video through the config's test
pipeline. The runtimes are optional: ``pip install -r requirements/deploy.txt``.
"""
from .exportable import ExportableRecognizer
from .export import build_recognizer, export_recognizer, sidecar_path
from .inference import inference_exported, video_views
from .runtime import RuntimeModel, build_runtime_model

__all__ = ['ExportableRecognizer', 'build_recognizer', 'export_recognizer', 'sidecar_path',
           'inference_exported', 'video_views', 'RuntimeModel', 'build_runtime_model']
