"""Canonical model and model family of a reported (provider, model), worked out at query time.

Rollups keep the model name each call reported; pages and the usage API fold those names:

- the **canonical model** is the genai-prices catalog's id for the provider and model, found
  by the library's own matching (`gpt-4o-2024-08-06` and `gpt-4o` are both `gpt-4o`); a model
  the catalog does not know keeps its reported name;
- the **model family** comes from ordered rules over the canonical id: the tenant's own
  (`ModelFamilyRule`, longest pattern first) win over the built-in `BUILTIN_RULES` (first
  match wins). A model no rule matches is its own family: its canonical id, so nothing is
  hidden and an admin sees what to add a rule for.

A rule's pattern is a glob (`*`, `?`, `[...]`) over the lowercased canonical id; a pattern
without any of those is a prefix (`gpt-4o` means `gpt-4o*`).

Both lookups are cached per process (a page folds a few hundred rows, each a dictionary hit);
the catalog cache is emptied when genai-prices' data changes (`catalog_generation`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from fnmatch import fnmatchcase

from pricing.catalog import catalog_generation, catalog_model_id
from pricing.models import ModelFamilyRule
from tenants.models import Tenant

GLOB_CHARS = frozenset("*?[")
# (pattern, family), first match wins: the narrower patterns of a line come first.
BUILTIN_RULES: tuple[tuple[str, str], ...] = (
    ("gpt-4o-mini*", "GPT-4o mini"), ("chatgpt-4o*", "GPT-4o"), ("ft:gpt-4o-mini*", "GPT-4o mini"),
    ("ft:gpt-4o*", "GPT-4o"), ("gpt-4o*", "GPT-4o"),
    ("gpt-4.1*", "GPT-4.1"), ("gpt-4.5*", "GPT-4.5"), ("gpt-4*", "GPT-4"),
    ("gpt-3.5*", "GPT-3.5"), ("ft:gpt-3.5*", "GPT-3.5"),
    ("gpt-5*", "GPT-5"), ("gpt-6*", "GPT-6"), ("gpt-oss*", "GPT-OSS"), ("*/gpt-oss*", "GPT-OSS"),
    ("o1*", "o1/o3"), ("o3*", "o1/o3"), ("o4*", "o4"),
    ("text-embedding*", "OpenAI embeddings"), ("whisper*", "Whisper"), ("tts-*", "OpenAI TTS"),
    ("claude-3-5*", "Claude 3.5"), ("claude-3.5*", "Claude 3.5"),
    ("claude-3-7*", "Claude 3.7"), ("claude-3.7*", "Claude 3.7"),
    ("claude-3*", "Claude 3"), ("claude-2*", "Claude 2"), ("claude-v1*", "Claude 1"),
    ("claude-*-4-5*", "Claude 4.5"), ("claude-4.5*", "Claude 4.5"),
    ("claude-*-4*", "Claude 4"), ("claude-4*", "Claude 4"),
    ("claude-*-5*", "Claude 5"), ("claude-5*", "Claude 5"),
    ("gemini-1.5*", "Gemini 1.5"), ("gemini-*-1.5*", "Gemini 1.5"),
    ("gemini-2.0*", "Gemini 2.0"), ("gemini-2.5*", "Gemini 2.5"), ("gemini-*-2.5*", "Gemini 2.5"),
    ("gemini-3*", "Gemini 3"), ("gemini-1.0*", "Gemini 1.0"), ("gemini-pro", "Gemini 1.0"),
    ("gemma*", "Gemma"),
    ("llama-3*", "Llama 3"), ("llama3*", "Llama 3"), ("*llama-3*", "Llama 3"),
    ("*llama-4*", "Llama 4"), ("llama-4*", "Llama 4"), ("llama2*", "Llama 2"),
    ("mistral*", "Mistral"), ("mixtral*", "Mistral"), ("ministral*", "Mistral"),
    ("codestral*", "Mistral"), ("magistral*", "Mistral"), ("devstral*", "Mistral"),
    ("pixtral*", "Mistral"), ("open-mistral*", "Mistral"),
    ("deepseek*", "DeepSeek"), ("grok*", "Grok"), ("command*", "Command"), ("qwen*", "Qwen"),
    ("*/qwen*", "Qwen"),
)  # fmt: skip


def _glob(pattern: str) -> str:
    pattern = pattern.strip().lower()
    return pattern if GLOB_CHARS & set(pattern) else f"{pattern}*"


def matches(pattern: str, model_id: str) -> bool:
    """Whether a rule's pattern (a glob, or a prefix) matches a canonical model id."""
    return fnmatchcase(model_id.lower(), _glob(pattern))


def canonical_model(provider: str, model: str) -> str:
    """The catalog's id of the model, or the reported name when the catalog does not know it."""
    return _canonical(provider, model, catalog_generation())


@functools.lru_cache(maxsize=16384)
def _canonical(provider: str, model: str, generation: int) -> str:
    return catalog_model_id(provider, model) or model


@functools.lru_cache(maxsize=16384)
def builtin_family(model_id: str) -> str | None:
    """The family the built-in rules give a canonical id, or None."""
    return next((family for pattern, family in BUILTIN_RULES if matches(pattern, model_id)), None)


@dataclass(frozen=True)
class ModelNames:
    """One tenant's folding of reported models: canonical model and family, for one request
    (its rules read once; the catalog and built-in lookups are the process's caches)."""

    rules: tuple[tuple[str, str], ...]  # (glob, family), the order they are tried in

    @classmethod
    def of(cls, tenant: Tenant | int) -> ModelNames:
        rows = ModelFamilyRule.objects.for_tenant(tenant).values_list("match", "family")
        return cls(tuple((_glob(m), f) for m, f in sorted(rows, key=_rule_order)))

    def canonical(self, provider: str, model: str) -> str:
        return canonical_model(provider, model)

    def family(self, provider: str, model: str) -> str:
        return self.family_of(canonical_model(provider, model))

    def family_of(self, model_id: str) -> str:
        lowered = model_id.lower()
        for pattern, family in self.rules:
            if fnmatchcase(lowered, pattern):
                return family
        return builtin_family(model_id) or model_id


def _rule_order(rule: tuple[str, str]) -> tuple[int, str]:
    # The most specific first: a longer pattern names fewer models; ties in name order.
    return (-len(rule[0]), rule[0])
