"""Python-backend model files copied into an exported Triton repository (each becomes `1/model.py`)."""
