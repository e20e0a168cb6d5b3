"""ONNX units: the shared ONNX export, ONNX Runtime on the CPU (fp32, int8 with SmoothQuant) and GPU, TensorRT."""
