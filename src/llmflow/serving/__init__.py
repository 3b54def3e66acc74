"""What the Model Registry stores: an MLflow pyfunc that answers through llmflow's providers."""
