import pytest

from canvasdata.taxonomy import (
    BUILTIN_SPACES,
    DOMAINS,
    OBJECTS,
    UC50,
    UC60,
    LabelError,
    LabelSpace,
    label_space,
    prompt,
    split_target,
    unknown_message,
)


def test_label_spaces_match_the_reference():
    assert len(UC50) == 51 and UC50.index("Seed_Images") == 38
    assert list(UC50) == sorted(UC50)
    assert len(UC60) == 61 and UC60.index("Seed_Images") == 47
    assert UC60.index("Palette_Knife") == 30 and UC60.index("Magic_Cube") == 31
    assert list(UC60) != sorted(UC60), "uc60 keeps the original's unsorted order"
    assert len(OBJECTS) == 20 and list(OBJECTS) == sorted(OBJECTS)
    assert set(UC50) < set(UC60)


def test_prompt_template():
    assert prompt("Van_Gogh", "Cats") == "A Cats image in Van Gogh style."
    assert prompt("Seed_Images", "Human") == "A Human image in Photo style."


def test_unknown_names_suggest_the_closest():
    with pytest.raises(LabelError, match="did you mean Van_Gogh"):
        BUILTIN_SPACES["uc60"].id("VanGogh")
    with pytest.raises(LabelError, match="uc60"):
        label_space("uc61")


def test_custom_space_and_duplicates():
    space = label_space("mine", {"mine": ["A", "B"]})
    assert space.id("B") == 1
    with pytest.raises(LabelError, match="repeats"):
        LabelSpace("bad", ("A", "A"))


def test_unknown_name_lists_at_most_twenty_names_when_none_is_close():
    names = [f"model{i}" for i in range(1371)]
    msg = unknown_message("zzzzqqq", names, "timm models")
    assert msg.endswith("model18, model19, ... (1351 more)") and "model20," not in msg
    close = unknown_message("model7x", names, "timm models")
    assert close.startswith("unknown name 'model7x' in timm models; did you mean model7")
    assert unknown_message("q", ["a", "b"], "letters") == "unknown name 'q' in letters; allowed: a, b"


@pytest.mark.parametrize("spec, expected", [
    ("style:Van_Gogh", ("style", "Van_Gogh")), ("object:Cats", ("object", "Cats")),
    ("style:Van_Gogh+object:Cats", None), ("Van_Gogh", None), ("style:", None), ("colour:Red", None),
    (":Cats", None), ("object Cats", None),
])
def test_one_parser_of_domain_name_requests(spec, expected):
    assert split_target(spec) == expected
    assert DOMAINS == ("style", "object")
