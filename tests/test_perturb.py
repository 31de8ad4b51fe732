"""Perturbations: HELM's definitions where HELM has one, seeded variants that are the same in every
process, the fields they touch, and one clear line for a perturbation that cannot make a variant."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pytest_llmeval.perturb as P
from pytest_llmeval.perturb.draws import SeededDraws, derive_seed
from pytest_llmeval.perturb.wordlists import load_neighbours, match_case

def _data(name: str) -> list[str]:
    from importlib import resources

    return resources.files("pytest_llmeval.perturb").joinpath("data", name).read_text(encoding="utf-8").splitlines()


TEXT = "I'm sure Jack's son can't see it, but he is tall. Where is the Library?"
words = st.text(alphabet=st.sampled_from("abcdefghijklmnopqrstuvwxyz ABCXYZ.,?!'"), max_size=60)


# ---------------------------------------------------------------- robustness, as HELM defines them


@given(words, st.integers(0, 2**32))
def test_typos_replace_letters_by_keyboard_neighbours_and_keep_case(text: str, seed: int) -> None:
    keys = load_neighbours()
    out = P.typos(rate=0.5).draw([text], seed)[0]
    assert len(out) == len(text)
    for before, after in zip(text, out):
        if before != after:
            assert after.lower() in keys[before.lower()]
            assert after.isupper() == before.isupper()


def test_typos_rate_is_the_share_of_letters_changed() -> None:
    text = "the quick brown fox jumps over the lazy dog " * 50
    letters = sum(c.isalpha() for c in text)
    changed = sum(a != b for a, b in zip(text, P.typos(rate=0.1).draw([text], 7)[0]))
    # 1800 letters, each changed with p=0.1: mean 180, sd 12.7; 5 sd either side
    assert 116 <= changed <= 244, (changed, letters)


def test_rate_zero_changes_nothing_and_case_lower_is_helms_lowercase() -> None:
    for p in (P.typos(rate=0.0), P.filler_words(rate=0.0), P.punctuation(rate=0.0), P.whitespace(rate=0.0)):
        assert p.draw([TEXT], 3) == [TEXT]
    assert P.case("lower").draw([TEXT], 3) == [TEXT.lower()]
    assert P.case("upper").draw([TEXT], 3) == [TEXT.upper()]
    assert P.case("title").draw(["hello WORLD, it's me"], 3) == ["Hello World, It's Me"]


@given(words, st.integers(0, 2**32))
def test_whitespace_changes_only_the_length_of_space_runs(text: str, seed: int) -> None:
    out = P.whitespace(max_spaces=3).draw([text], seed)[0]
    assert [w for w in out.split(" ") if w] == [w for w in text.split(" ") if w]
    assert all(1 <= len(run) <= 3 for run in re.findall(" +", out))


def test_contractions_and_expansions_follow_helms_examples() -> None:
    assert P.contractions().draw(["She is a doctor, and I am a student"], 0) == ["She's a doctor, and I'm a student"]
    assert P.expansions().draw(["She's a doctor, and I'm a student"], 0) == ["She is a doctor, and I am a student"]
    # only before a space (not at the end of a sentence), and the case of the words is kept
    assert P.contractions().draw(["Yes, it is. IT IS done"], 0) == ["Yes, it is. IT'S done"]
    assert P.expansions().draw(["It\u2019s CAN'T"], 0) == ["It is CANNOT"]


def test_punctuation_drops_clause_marks_but_not_decimal_points() -> None:
    assert P.punctuation().draw(["Pi is 3.14, roughly. Right?"], 0) == ["Pi is 3.14 roughly Right"]


def test_filler_words_insert_listed_phrases_before_words(tmp_path) -> None:
    fillers = tmp_path / "fillers.tsv"
    fillers.write_text("filler\tuhm\n", encoding="utf-8")
    assert P.filler_words(rate=1.0, words=fillers).draw(["one two three"], 5) == ["uhm one uhm two uhm three"]
    out = P.filler_words(rate=1.0).draw(["one two"], 5)[0]
    listed = [line.split("\t")[1] for line in _data("filler_words.tsv") if not line.startswith("#")]
    assert any(out == f"{a} one {b} two" for a in listed for b in listed)


# ---------------------------------------------------------------- fairness


def test_names_swap_between_groups_consistently_and_keep_gender() -> None:
    groups = P.NAMES_BY_GROUP
    gender_of = {n.name: n for ns in groups.values() for n in ns}
    texts = ["Jack met Lauren. JACK waved.", "Who did Jack meet?", "Lauren"]
    out = P.names(source="european_american", target="african_american").draw(texts, 11)
    jack = out[1].split()[2]
    lauren = out[2]
    assert out[0] == f"{jack} met {lauren}. {jack.upper()} waved."
    assert gender_of[jack].group == gender_of[lauren].group == "african_american"
    assert gender_of[jack].gender == "male" and gender_of[lauren].gender == "female"


def test_names_need_a_capital_and_a_whole_word() -> None:
    p = P.names()
    assert p.draw(["a frank talk about jackets and Jackson"], 1) == ["a frank talk about jackets and Jackson"]


def test_names_and_gender_change_answers_too() -> None:
    p = P.names()
    assert p.touches_answers and P.gender().touches_answers and not P.typos().touches_answers
    assert P.fields_to_perturb(p, ["question"], answer_fields=["answer"]) == ("question", "answer")
    assert P.fields_to_perturb(P.typos(), ["question"], answer_fields=["answer"]) == ("question",)
    assert P.fields_to_perturb(P.typos().on("context"), ["question"]) == ("context",)
    assert P.fields_to_perturb(P.typos(), ["question"], fields=["q2"]) == ("q2",)


def test_gender_rewrites_terms_and_pronouns_male_to_female() -> None:
    out = P.gender().draw(["He told his son and the King: him, himself. Chess is his."], 0)[0]
    assert out == "She told her daughter and the Queen: her, herself. Chess is her."
    assert P.gender("female", "male").draw(["her mom"], 0) == ["him dad"]  # first row wins, as HELM


def test_match_case() -> None:
    assert match_case("don't", "do not") == "do not"
    assert match_case("DON'T", "do not") == "DO NOT"
    assert match_case("Don't", "do not") == "Do not"
    assert match_case("I'd", "I would") == "I would"


# ---------------------------------------------------------------- seeded variants


def test_a_variant_is_the_same_for_the_same_seed_case_and_perturbation() -> None:
    case = {"id": "qa-7", "question": TEXT, "answer": "Jack"}
    p = P.typos(rate=0.2)
    one = P.draw_variant(case, p, seed=1, case_id="qa-7", fields=["question"])
    assert one == P.draw_variant(dict(case), P.typos(rate=0.2), seed=1, case_id="qa-7", fields=["question"])
    assert one["answer"] == "Jack" and one["question"] != TEXT
    assert P.draw_variant(case, p, seed=2, case_id="qa-7", fields=["question"]) != one
    assert P.draw_variant(case, p, seed=1, case_id="qa-8", fields=["question"]) != one
    assert P.draw_variant(case, P.typos(rate=0.3), seed=1, case_id="qa-7", fields=["question"]) != one
    assert P.variant_id("qa-7", p) == "qa-7~typos"


def test_variants_are_the_same_in_another_process() -> None:
    script = textwrap.dedent(
        """
        import json, sys
        import pytest_llmeval.perturb as P
        from hypothesis import strategies as st
        case = {"question": sys.argv[1], "choices": ["Jack went", "Lauren"], "n": 3}
        out = {}
        for p in (P.typos(0.2), P.whitespace(), P.filler_words(), P.names(), P.gender(),
                  P.from_strategy("shout", lambda t: st.sampled_from([t.upper(), t + "!", t.lower()])),
                  P.from_function("drop", lambda t, r: t[int(r.random() * len(t)):])):
            out[p.name] = P.draw_variant(case, p, seed=5, case_id="c1", fields=["question", "choices", "n"])
        print(json.dumps(out, sort_keys=True))
        """
    )
    runs = [
        subprocess.run([sys.executable, "-c", script, TEXT], capture_output=True, text=True, check=True,
                       env={"PYTHONHASHSEED": str(h), "PATH": "/usr/bin:/bin"})
        for h in (1, 2)
    ]
    first = json.loads(runs[0].stdout)
    assert first == json.loads(runs[1].stdout)
    here = {}
    for p in (P.typos(0.2), P.names()):
        here[p.name] = P.draw_variant({"question": TEXT, "choices": ["Jack went", "Lauren"], "n": 3}, p, seed=5,
                                      case_id="c1", fields=["question", "choices", "n"])
    assert first["typos"] == here["typos"] and first["names"] == here["names"]
    assert first["names"]["n"] == 3 and first["names"]["choices"][1] != "Lauren"


def test_seeded_draws_use_only_random_and_are_stable() -> None:
    draws = SeededDraws(derive_seed(1, "a"))
    assert draws.sites(10, 0.5) == SeededDraws(derive_seed(1, "a")).sites(10, 0.5)
    assert derive_seed(1, "a") == derive_seed(1, "a") != derive_seed(1, "b")
    # a variant's seed must never change between versions: pinned
    assert derive_seed(0, "c", "typos") == 0xD542A48B96770CD4


@settings(max_examples=30)
@given(st.text(max_size=40), st.integers(0, 2**32))
def test_every_built_in_perturbation_returns_text_for_any_text(text: str, seed: int) -> None:
    for p in (P.typos(), P.case("upper"), P.whitespace(), P.contractions(), P.expansions(), P.punctuation(),
              P.filler_words(), P.names(), P.gender()):
        out = p.draw([text, text], seed)
        assert len(out) == 2 and all(isinstance(t, str) for t in out)


# ---------------------------------------------------------------- bad input: one line


def test_a_perturbation_that_returns_no_string_is_one_clear_line() -> None:
    bad = P.from_function("count", lambda t, r: len(t))
    with pytest.raises(P.PerturbationError) as info:
        P.draw_variant({"q": "abc"}, bad, seed=0, case_id="c1", fields=["q"])
    message = str(info.value)
    assert "\n" not in message
    assert "'count'" in message and "int" in message and "case 'c1'" in message and "must return a str" in message


def test_a_strategy_that_cannot_draw_is_one_clear_line() -> None:
    never = P.from_strategy("never", lambda t: st.text().filter(lambda s: False))
    with pytest.raises(P.PerturbationError) as info:
        P.draw_variant({"q": "abc"}, never, seed=0, case_id="c1", fields=["q"])
    assert "\n" not in str(info.value) and "could not draw" in str(info.value) and "'never'" in str(info.value)
    not_a_strategy = P.from_strategy("plain", lambda t: t.upper())
    with pytest.raises(P.PerturbationError, match="not a hypothesis strategy"):
        P.draw_variant({"q": "abc"}, not_a_strategy, seed=0, case_id="c1", fields=["q"])


def test_a_perturbation_that_raises_is_one_clear_line() -> None:
    boom = P.from_function("boom", lambda t, r: t[100])
    with pytest.raises(P.PerturbationError, match=r"^perturbation 'boom' failed for case 'c1': IndexError"):
        P.draw_variant({"q": "abc"}, boom, seed=0, case_id="c1", fields=["q"])


def test_bad_arguments_and_word_lists_say_what_to_fix(tmp_path) -> None:
    with pytest.raises(P.PerturbationError, match="rate must be a number between 0 and 1"):
        P.typos(rate=2)
    with pytest.raises(P.PerturbationError, match="the mode must be one of"):
        P.case("shout")  # type: ignore[arg-type]
    with pytest.raises(P.PerturbationError, match="no such group"):
        P.names(source="martians")
    bad = tmp_path / "keys.tsv"
    bad.write_text("q\twas\nw\n", encoding="utf-8")
    with pytest.raises(P.PerturbationError, match=r"keys.tsv:2: expected 2 tab-separated"):
        P.typos(neighbours=bad)


def test_a_users_word_lists_replace_ours(tmp_path) -> None:
    keys = tmp_path / "keys.tsv"
    keys.write_text("a\tz\n", encoding="utf-8")
    assert P.typos(rate=1.0, neighbours=keys).draw(["banana"], 0) == ["bznznz"]
    names = tmp_path / "names.tsv"
    names.write_text("Ann\tx\tfemale\nBea\ty\tfemale\n", encoding="utf-8")
    assert P.names(P.load_names(names)).draw(["Ann and Bea"], 0) == ["Bea and Ann"]


def test_the_word_lists_ship_with_the_package() -> None:
    from importlib import resources

    data = resources.files("pytest_llmeval.perturb").joinpath("data")
    found = sorted(p.name for p in data.iterdir() if p.name.endswith(".tsv"))
    assert found == ["contractions.tsv", "filler_words.tsv", "gendered_words.tsv", "keyboard_neighbours.tsv", "person_names.tsv"]
    for name in found:
        assert "Source" in data.joinpath(name).read_text(encoding="utf-8").split("\n\n")[0]


def test_a_projects_hypothesis_profile_changes_no_draw() -> None:
    from hypothesis import Phase, Verbosity
    from hypothesis import settings as hsettings

    from pytest_llmeval.datasets.generated import generated

    shout = P.from_strategy("shout", lambda t: st.sampled_from([t.upper(), t + "!", t.lower(), t[::-1]]))
    pairs = st.fixed_dictionaries({"a": st.integers(0, 99), "b": st.integers(0, 99)})

    def draws():
        return (P.draw_variant({"q": TEXT}, shout, seed=3, case_id="c", fields=["q"]), generated(pairs, n=10, seed=2))

    before = draws()
    previous = hsettings.get_current_profile_name()
    hsettings.register_profile("llmeval-other", max_examples=2, derandomize=True, phases=[Phase.explicit],
                               verbosity=Verbosity.verbose)
    hsettings.load_profile("llmeval-other")
    try:
        assert draws() == before
    finally:
        hsettings.load_profile(previous)
