"""Prompt sets: the shipped v1/v2 and every validation error of the loader."""

from __future__ import annotations

import textwrap

import pytest
from hypothesis import given
from hypothesis import strategies as st

from subspacelens.prompts import load_prompt_set, subject_label

GOOD = {
    "name": "t",
    "template": '"{subject}"',
    "seeds": 2,
    "categories": "\n  animals: [a lion, an elephant]\n  food: [sushi]",
}


def _write(tmp_path, text: str):
    path = tmp_path / "set.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def _spec(tmp_path, **fields):
    values = {**GOOD, **fields}
    lines = [f"{k}: {v}" for k, v in values.items() if v is not None]
    return _write(tmp_path, "\n".join(lines) + "\n")


def test_v2_is_the_blogs_500_sample_protocol():
    ps = load_prompt_set("v2")
    s = ps.samples
    assert list(s.columns) == ["subject", "category", "seed", "prompt"]
    assert len(s) == 500 and s["seed"].nunique() == 20
    assert len(ps.subjects) == 25 and ps.category_names == ["animals", "buildings", "food", "vehicles", "landscapes"]
    assert s.groupby("category")["subject"].nunique().eq(5).all()
    assert s.iloc[0].to_dict() == {"subject": "lion", "category": "animals", "seed": 0, "prompt": "a lion"}
    assert list(s["seed"][:3]) == [0, 1, 2]  # subject-major, then seed
    assert ps.category_of["bowl of ramen"] == "food"


def test_v1_is_the_templated_sweep():
    s = load_prompt_set("v1").samples
    assert len(s) == 500 and set(s["seed"]) == {0}
    assert s["prompt"].iloc[0] == "a lion, majestic, at sunset, detailed photograph"
    assert s["prompt"].nunique() == 500


def test_a_yaml_path_loads_like_a_name(tmp_path):
    ps = load_prompt_set(_spec(tmp_path))
    assert ps.name == "t" and len(ps.samples) == 6
    assert ps.subjects == ["lion", "elephant", "sushi"]


def test_variables_make_a_cartesian_product(tmp_path):
    path = _spec(tmp_path, template='"{subject}, {mood}"', variables="\n  mood: [calm, wild]", seeds=1)
    s = load_prompt_set(path).samples
    assert list(s["prompt"][:2]) == ["a lion, calm", "a lion, wild"]


@pytest.mark.parametrize(
    "fields, match",
    [
        ({"colour": "red"}, r"unknown keys \['colour'\]"),
        ({"seeds": None}, r"missing keys \['seeds'\]"),
        ({"categories": "\n  animals: [a lion]\n  more: [the lion]"}, "'lion' appears twice"),
        ({"categories": "\n  animals: [a lion, a lion]"}, "'lion' appears twice"),
        ({"categories": "\n  animals: [a lion]\n  food: []"}, "category 'food' is empty"),
        ({"categories": "\n  animals: [a lion]\n  food:"}, "category 'food' is empty"),
        ({"categories": "\n  animals: [a lion]\n  animals: [sushi]"}, "given twice"),
        ({"categories": "\n  animals: a lion"}, "must be a list"),
        ({"categories": "{}"}, "non-empty mapping"),
        ({"seeds": 0}, "positive integer"),
        ({"seeds": "true"}, "positive integer"),
        ({"template": '"{subject} {where}"'}, r"undefined fields \['where'\]"),
        ({"template": '"a photo"'}, "must contain"),
        ({"template": '"{} {subject}"'}, "named fields"),
        ({"template": '"{subject"'}, "malformed"),
        ({"template": "[1]"}, "must be a string"),
        ({"variables": "[a, b]"}, "'variables' must be a mapping"),
        ({"variables": "\n  mood: []", "template": '"{subject} {mood}"'}, "variable 'mood'"),
    ],
)
def test_invalid_prompt_sets_raise_value_errors(tmp_path, fields, match):
    with pytest.raises(ValueError, match=match):
        load_prompt_set(_spec(tmp_path, **fields))


def test_not_a_mapping_or_not_yaml(tmp_path):
    with pytest.raises(ValueError, match="mapping at the top level"):
        load_prompt_set(_write(tmp_path, "- a\n- b\n"))
    with pytest.raises(ValueError, match="prompt set"):
        load_prompt_set(_write(tmp_path, "name: [unclosed\n"))


def test_unknown_set_lists_the_available_ones():
    with pytest.raises(ValueError, match=r"available: \[.*'v1'.*'v2'"):
        load_prompt_set("v9")


@given(
    st.sampled_from(["a ", "an ", "the ", "A ", "The ", "a  ", ""]),
    st.from_regex(r"[b-su-z][a-z]{0,10}( [a-z]{1,8})?", fullmatch=True),
)
def test_subject_label_drops_one_leading_article(article, noun):
    assert subject_label(article + noun) == noun
    assert subject_label(f"  {article}{noun} ") == noun


@pytest.mark.parametrize(
    "fields, match",
    [
        ({"categories": "\n  flags: [the flag of France, NO, FR]"},
         r"line 5: category 'flags': value 'NO' is read by YAML as a bool, not a string; quote it"),
        ({"categories": "\n  flags: [on, null]"}, r"category 'flags': value 'on' is read by YAML as a bool"),
        ({"categories": "\n  flags: [a flag, null]"}, r"category 'flags': value 'null' is read by YAML as a null"),
        ({"categories": "\n  flags: [a flag, 1.5]"}, r"category 'flags': value '1.5' is read by YAML as a float"),
        ({"categories": "\n  no: [a lion]"}, r"category name 'no' is read by YAML as a bool"),
        ({"variables": "\n  count: [1, 2]", "template": '"{subject} {count}"'},
         r"variable 'count': value '1' is read by YAML as a int"),
        ({"categories": "\n  animals: [[a lion]]"}, r"category 'animals': value holds a nested list \[a lion\]"),
        ({"categories": "\n  animals: [{a: lion}]"}, r"category 'animals': value holds a nested mapping"),
        ({"name": "yes"}, r"'name' 'yes' is read by YAML as a bool"),
        ({"variables": "\n  mood: [calm, wild]"}, r"variables \['mood'\] are not used by the template '\{subject\}'"),
        ({"variables": "\n  mood: [calm, calm]", "template": '"{subject}, {mood}"'},
         r"6 samples repeat an earlier one, e.g. prompt 'a lion, calm' at seed 0"),
    ],
)
def test_non_strings_unused_variables_and_duplicates_are_refused(tmp_path, fields, match):
    with pytest.raises(ValueError, match=match):
        load_prompt_set(_spec(tmp_path, **fields))


def test_quoted_yaml_keywords_are_ordinary_subjects(tmp_path):
    path = _spec(tmp_path, categories='\n  flags: ["NO", "on"]\n  numbers: ["1.5"]', seeds=1)
    assert list(load_prompt_set(path).samples["prompt"]) == ["NO", "on", "1.5"]
