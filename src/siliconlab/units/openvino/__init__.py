"""OpenVINO units on the CPU: fp32 from the ONNX export and NNCF int8 weight compression."""
