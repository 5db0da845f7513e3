"""Stop strings cut streamed text at their first occurrence, even when split over several chunks."""

import pytest

from llama_ort.runtime.stopping import StopStrings


def stream(stops, chunks):
    cut = StopStrings(stops)
    shown = []
    for chunk in chunks:
        text, stopped = cut.push(chunk)
        shown.append(text)
        if stopped:
            return shown, True
    shown.append(cut.flush())
    return shown, False


@pytest.mark.parametrize("chunks, shown, stopped", [
    (["Hello", " wor", "ld"], ["Hello", " wor", "ld", ""], False),
    (["Hello ##", "# end"], ["Hello ", ""], True),  # "###" over two chunks: nothing of it is shown
    (["a#", "#", "b"], ["a", "", "##b", ""], False),  # a held-back "##" that turns out not to stop is shown
    (["x", "STOP", "y"], ["x", ""], True),
    (["ab##", "#"], ["ab", ""], True),
])
def test_text_is_shown_up_to_the_first_stop_string(chunks, shown, stopped):
    assert stream(["###", "STOP"], chunks) == (shown, stopped)


def test_the_earliest_of_several_stop_strings_wins():
    assert stream(["b", "a"], ["xyab"]) == (["xy"], True)


def test_no_stop_strings_shows_everything_at_once():
    assert stream([], ["a", "bc"]) == (["a", "bc", ""], False)
