import pytest

from omni_caption.cli.shown_text import printable


@pytest.mark.parametrize("text,shown", [
    ("meeting é 会議.wav", "meeting é 会議.wav"),
    ("bad\nname.wav", "bad\\nname.wav"),
    ("esc\x1b[31mred\tnow\r", "esc\\x1b[31mred\\tnow\\r"),
    ("bell\x07 del\x7f c1\x85", "bell\\x07 del\\x7f c1\\x85"),
])
def test_control_characters_are_written_out_and_the_rest_stays(text, shown):
    assert printable(text) == shown and "\n" not in printable(text)


def test_a_runs_error_lines_stay_one_line_each(capsys):
    from omni_caption.cli.run_report import _echo_some

    _echo_some(["bad\nname.wav: FFmpeg cannot read it", "ok.wav: fine"], "  ", "error")
    assert capsys.readouterr().out.splitlines() == ["  error: bad\\nname.wav: FFmpeg cannot read it",
                                                    "  error: ok.wav: fine"]
