"""The command line's own argument checks: argparse refuses them with exit code 2 and a message."""

import pytest

from gpt_image_2_mcp.entrypoints.cli import parser


@pytest.mark.parametrize("args", [["images", "--limit", "0"], ["images", "--limit", "-5"], ["spend", "--days", "0"],
                                  ["spend", "--days", "many"]])
def test_counts_below_one_are_refused_not_changed(args, capsys):
    with pytest.raises(SystemExit) as exited:
        parser().parse_args(args)
    assert exited.value.code == 2 and "is not a whole number of 1 or more" in capsys.readouterr().err


def test_counts_of_one_or_more_are_taken_as_given():
    assert parser().parse_args(["images", "--limit", "3"]).limit == 3
    assert parser().parse_args(["spend", "--days", "1"]).days == 1
