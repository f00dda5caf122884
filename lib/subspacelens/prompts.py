"""Prompt sets: which prompts are generated, with which seeds, under which labels.

A prompt set is a plain YAML file (``data/prompts/<name>.yaml``)::

    name: v2
    description: ...
    template: "{subject}"             # may also use every key of ``variables``
    seeds: 20                         # seeds 0..seeds-1 for every prompt
    variables:                        # optional: Cartesian product with the subjects
      adjective: [majestic, ancient]
    categories:                       # coarse label -> fine labels (subject phrases)
      animals: [a lion, an elephant]

Every sample carries ``subject`` (the fine label: the phrase without its article),
``category`` (the coarse label), ``seed`` and ``prompt``. Samples are ordered
subject-major, then variables, then seed, so a run is reproducible sample by sample.

Category names, subjects, variable names and values must be YAML strings: an unquoted ``NO``, ``on``,
``null`` or ``1.5`` (which YAML reads as a boolean, null or number) is refused with the text as written,
so it never becomes the prompt "the flag of False". Every variable must appear in the template and no
(prompt, seed) sample may appear twice: either would duplicate samples and distort every rank-based metric.
"""

from __future__ import annotations

import itertools
import string
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

PROMPTS_DIR = Path(__file__).resolve().parents[2] / "data" / "prompts"

_KNOWN_KEYS = {"name", "description", "template", "seeds", "variables", "categories"}
_REQUIRED_KEYS = {"name", "template", "seeds", "categories"}
_ARTICLES = ("a ", "an ", "the ")


@dataclass(frozen=True)
class PromptSet:
    """A validated prompt set; ``samples`` has one row per image to generate."""

    name: str
    description: str
    template: str
    categories: dict[str, tuple[str, ...]]
    samples: pd.DataFrame

    @property
    def subjects(self) -> list[str]:
        """Fine labels in file order."""
        return list(dict.fromkeys(self.samples["subject"]))

    @property
    def category_names(self) -> list[str]:
        """Coarse labels in file order."""
        return list(self.categories)

    @property
    def category_of(self) -> dict[str, str]:
        """Fine label -> coarse label."""
        return dict(zip(self.samples["subject"], self.samples["category"]))


def subject_label(phrase: str) -> str:
    """The fine label of a subject phrase: ``"an elephant" -> "elephant"``."""
    lowered = phrase.strip()
    for article in _ARTICLES:
        if lowered.lower().startswith(article):
            return lowered[len(article):].strip()
    return lowered


def load_prompt_set(name_or_path: str | Path) -> PromptSet:
    """Load and validate a prompt set by name (``"v2"``) or by YAML path.

    Raises ``ValueError`` naming the problem: unknown or missing keys, an empty
    category, a subject listed twice, a template that uses an undefined field,
    or a non-positive number of seeds.
    """
    path = Path(name_or_path)
    if path.suffix not in {".yaml", ".yml"}:
        path = PROMPTS_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        available = sorted(p.stem for p in PROMPTS_DIR.glob("*.yaml"))
        raise ValueError(f"prompt set {str(name_or_path)!r} not found (looked for {path}); available: {available}")
    loader = _UniqueKeyLoader(path.read_text())
    try:
        root = loader.get_single_node()
        spec = loader.construct_document(root) if root is not None else None
    except yaml.YAMLError as err:
        raise ValueError(f"prompt set {path}: {err}") from None
    finally:
        loader.dispose()
    if not isinstance(spec, dict):
        raise ValueError(f"prompt set {path}: expected a mapping at the top level")
    _check_strings(root, source=str(path))
    return _validate(spec, source=str(path))


_STRING_TAG = "tag:yaml.org,2002:str"


def _require_string(node: yaml.Node, where: str, source: str) -> None:
    """``ValueError`` unless ``node`` is a scalar YAML reads as a string, quoting the text as written."""
    line = node.start_mark.line + 1
    if not isinstance(node, yaml.ScalarNode):
        kind = "list" if isinstance(node, yaml.SequenceNode) else "mapping"
        raise ValueError(
            f"prompt set {source}, line {line}: {where} holds a nested {kind} "
            f"{yaml.safe_dump(yaml.SafeLoader('').construct_object(node, deep=True), default_flow_style=True).strip()}; "
            "give plain strings"
        )
    if node.tag != _STRING_TAG:
        kind = node.tag.rsplit(":", 1)[-1]
        raise ValueError(
            f"prompt set {source}, line {line}: {where} {node.value!r} is read by YAML as a {kind}, not a string; "
            f'quote it ("{node.value}") if the text is meant'
        )


def _check_strings(root: yaml.MappingNode, source: str) -> None:
    """Category names, subjects, variable names and values (and ``name``/``description``) are strings."""
    sections = {key.value: value for key, value in root.value if isinstance(key, yaml.ScalarNode)}
    for key in ("name", "description"):
        if isinstance(sections.get(key), yaml.ScalarNode):
            _require_string(sections[key], f"{key!r}", source)
    for section, what in (("categories", "category"), ("variables", "variable")):
        mapping = sections.get(section)
        if not isinstance(mapping, yaml.MappingNode):
            continue  # its shape is reported by _validate
        for key_node, items in mapping.value:
            _require_string(key_node, f"{what} name", source)
            if isinstance(items, yaml.SequenceNode):
                for item in items.value:
                    _require_string(item, f"{what} {key_node.value!r}: value", source)


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping (a repeated category would
    otherwise silently replace the first)."""

    def construct_mapping(self, node, deep=False):
        keys = [self.construct_object(key, deep=deep) for key, _ in node.value]
        repeated = sorted({str(k) for k in keys if keys.count(k) > 1})
        if repeated:
            raise yaml.constructor.ConstructorError(None, None, f"key(s) {repeated} given twice", node.start_mark)
        return super().construct_mapping(node, deep=deep)


def _validate(spec: dict, source: str) -> PromptSet:
    unknown = set(spec) - _KNOWN_KEYS
    if unknown:
        raise ValueError(f"prompt set {source}: unknown keys {sorted(unknown)}; allowed: {sorted(_KNOWN_KEYS)}")
    missing = _REQUIRED_KEYS - set(spec)
    if missing:
        raise ValueError(f"prompt set {source}: missing keys {sorted(missing)}")

    seeds = spec["seeds"]
    if not isinstance(seeds, int) or isinstance(seeds, bool) or seeds < 1:
        raise ValueError(f"prompt set {source}: 'seeds' must be a positive integer, got {seeds!r}")

    categories = spec["categories"]
    if not isinstance(categories, dict) or not categories:
        raise ValueError(f"prompt set {source}: 'categories' must be a non-empty mapping of category -> subjects")
    seen: dict[str, str] = {}
    for category, phrases in categories.items():
        if not phrases:
            raise ValueError(f"prompt set {source}: category {category!r} is empty")
        if not isinstance(phrases, list):
            raise ValueError(f"prompt set {source}: category {category!r} must be a list of subjects, got {phrases!r}")
        for phrase in phrases:
            label = subject_label(str(phrase))
            if label in seen:
                raise ValueError(
                    f"prompt set {source}: subject {label!r} appears twice (in {seen[label]!r} and {category!r})"
                )
            seen[label] = category

    variables = spec.get("variables") or {}
    if not isinstance(variables, dict):
        raise ValueError(f"prompt set {source}: 'variables' must be a mapping of name -> list of values")
    for key, values in variables.items():
        if not values or not isinstance(values, list):
            raise ValueError(f"prompt set {source}: variable {key!r} must be a non-empty list of values")
    if not isinstance(spec["template"], str):
        raise ValueError(f"prompt set {source}: 'template' must be a string")
    try:
        fields = {field for _, field, _, _ in string.Formatter().parse(spec["template"]) if field is not None}
    except ValueError as err:
        raise ValueError(f"prompt set {source}: template {spec['template']!r} is malformed ({err})") from None
    positional = {f for f in fields if f == "" or f.isdigit()}
    if positional:
        raise ValueError(f"prompt set {source}: template must use named fields only, e.g. '{{subject}}'")
    undefined = fields - {"subject"} - set(variables)
    if undefined:
        raise ValueError(f"prompt set {source}: template uses undefined fields {sorted(undefined)}")
    unused = set(variables) - fields
    if unused:
        raise ValueError(
            f"prompt set {source}: variables {sorted(unused)} are not used by the template {spec['template']!r}; "
            "each of their values would repeat every sample"
        )
    if "subject" not in fields:
        raise ValueError(f"prompt set {source}: template must contain '{{subject}}'")

    rows = []
    for category, phrases in categories.items():
        for phrase in phrases:
            for combo in itertools.product(*variables.values()):
                text = spec["template"].format(subject=phrase, **dict(zip(variables, combo)))
                for seed in range(seeds):
                    rows.append(
                        {"subject": subject_label(str(phrase)), "category": category, "seed": seed, "prompt": text}
                    )
    samples = pd.DataFrame(rows)
    repeated = samples[samples.duplicated(["prompt", "seed"])]
    if not repeated.empty:
        first = repeated.iloc[0]
        raise ValueError(
            f"prompt set {source}: {len(repeated)} samples repeat an earlier one, e.g. prompt {first['prompt']!r} "
            f"at seed {first['seed']}; every (prompt, seed) must be distinct"
        )
    return PromptSet(
        name=str(spec["name"]),
        description=str(spec.get("description", "")),
        template=spec["template"],
        categories={c: tuple(map(str, p)) for c, p in categories.items()},
        samples=samples,
    )
