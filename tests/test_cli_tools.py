"""The research tools (corpus, text encoder, showcase) run through the one `textpromptir` command."""

import pytest

from textpromptir.cli import main
from textpromptir.resources import resource


def test_the_corpus_command_rebuilds_the_shipped_corpus(tmp_path, capsys):
    written = tmp_path / "corpus.jsonl"
    assert main(["corpus", str(written)]) == 0
    assert written.read_bytes() == resource("instructions", "corpus.jsonl").read_bytes()
    assert "total" in capsys.readouterr().out


@pytest.mark.parametrize("tool", ["showcase", "text-encoder", "corpus"])
def test_each_tool_takes_its_own_options_under_its_cli_name(tool, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([tool, "--help"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: textpromptir {tool} ")
