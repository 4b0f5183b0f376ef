"""Config files as a user writes them: `python -m saliencybench.config` names the file and
the line where Snakemake's own message names neither."""

import subprocess
import sys
from pathlib import Path

import pytest

from saliencybench.config import ConfigError, load_config_files, main

ROOT = Path(__file__).resolve().parents[1]


def test_yaml_syntax_error_names_file_line_and_column(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("seed: 0\ndevice: cpu\ndatasets:\n  digits: {source: digits\nmodels: {}\n")
    with pytest.raises(ConfigError, match=r"mine\.yaml, line 5, column 7: not valid YAML"):
        load_config_files([path])


def test_tab_indentation_names_the_line(tmp_path):
    path = tmp_path / "tabs.yaml"
    path.write_text("seed: 0\nmodels:\n\tsmall_cnn: {}\n")
    with pytest.raises(ConfigError, match=r"tabs\.yaml, line 3, column 1"):
        load_config_files([path])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "the config file is empty"),
        ("# only a comment\n", "the config file is empty"),
        ("- digits\n- shapes\n", "the top level is a list, expected a mapping"),
        ("just words\n", "the top level is a str, expected a mapping"),
    ],
)
def test_empty_or_non_mapping_file(tmp_path, text, expected):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=rf"c\.yaml: {expected}"):
        load_config_files([path])


def test_later_files_update_earlier_ones(tmp_path):
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text("seed: 0\nrecipes: {standard: {epochs: 3, lr: 0.1}}\n")
    second.write_text("recipes: {standard: {epochs: 5}}\n")
    merged = load_config_files([first, second])
    assert merged == {"seed": 0, "recipes": {"standard": {"epochs": 5, "lr": 0.1}}}


def test_command_validates_the_default_config_and_refuses_a_bad_key(tmp_path, capsys):
    assert main([str(ROOT / "config.yaml")]) == 0
    assert "config.yaml: valid" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text((ROOT / "config.yaml").read_text().replace("seed: 0", "sed: 0"))
    assert main([str(bad)]) == 1
    assert "Invalid config: config key 'sed' is unknown" in capsys.readouterr().out


def test_snakemake_message_is_what_the_readme_shows(tmp_path):
    """The README quotes Snakemake's message for a broken config file; keep it true."""
    path = tmp_path / "broken.yaml"
    path.write_text("seed: 0\ndatasets:\n  digits: {source: digits\n")
    done = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-n", "--cores", "1"]
        + ["--configfile", str(path), "--directory", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode != 0
    assert "Config file is not valid JSON or YAML" in done.stdout + done.stderr
    readme = (ROOT / "README.md").read_text()
    assert "Config file is not valid JSON or YAML" in readme
    assert "python -m saliencybench.config" in readme
