# llmflow registered model, logged as MLflow "models from code".
#
# Everything that varies (provider, model, settings, system prompt, base_url, the NAME of the
# API key variable) is in this model's model_config; keys are read from the environment when
# the model is loaded. Nothing here touches the network at import.
from mlflow.models import set_model

from llmflow.serving.chat_model import ChatModel

set_model(ChatModel())
