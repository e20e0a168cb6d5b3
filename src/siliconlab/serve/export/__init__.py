"""`siliconlab export-triton`: a model repository that a stock Triton Inference Server loads as-is."""

from siliconlab.serve.export.repository import ExportedModel, ExportResult, export_repository, exportable_units

__all__ = ["ExportResult", "ExportedModel", "export_repository", "exportable_units"]
