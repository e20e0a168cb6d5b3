"""`siliconlab export-triton`: a model repository that a stock Triton Inference Server loads as-is."""

from siliconlab.serve.export.repository import ExportedModel, ExportResult, exportable_units, export_repository

__all__ = ["ExportResult", "ExportedModel", "export_repository", "exportable_units"]
