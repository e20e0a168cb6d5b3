"""The MLX unit and the BERT encoder written with mlx.nn that it runs (Metal on Apple silicon, CPU build elsewhere)."""
