"""Training side: data ingestion and preparation, the model, training and evaluation."""
