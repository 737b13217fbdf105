"""`omni-caption speak` through CliRunner."""

import shutil

import soundfile
from click.testing import CliRunner

from omni_caption.cli.main import cli
from omni_caption.pipelines.run import RunOptions, run_corpus
from tests.conftest import EXAMPLES


def test_speak_writes_wavs_and_reports(tmp_path, cache_dir, tiny_dir):
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    shutil.copy(EXAMPLES / "field" / "voice_memo.m4a", recordings)
    out = tmp_path / "captions.parquet"
    run_corpus([recordings], out, RunOptions(tasks=("caption",), model="tiny-random", greedy=True, max_new_tokens=12,
                                             cache_dir=cache_dir), show_progress=False)
    args = ["speak", str(out), "--out", str(tmp_path / "voices"), "--model", "tiny-random", "--cache-dir",
            str(cache_dir), "--text-column", "caption", "--speaker", "chelsie", "--greedy", "--stream"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "1 written, 0 already voiced, 0 empty" in result.output and "nonsense" in result.output
    (wav,) = (tmp_path / "voices").glob("voice_memo.*-00000.wav")
    assert soundfile.info(wav).samplerate == 24_000
    refused = CliRunner().invoke(cli, args[:-4] + ["--speaker", "bob"])
    assert refused.exit_code == 1
    assert refused.output.strip().splitlines() == ["Error: unknown speaker 'bob': choose one of aiden, chelsie, ethan"]
    empty = CliRunner().invoke(cli, ["speak", str(out), "--out", str(tmp_path / "v2"), "--model", "tiny-random",
                                     "--cache-dir", str(cache_dir)])
    assert empty.exit_code == 1 and "every selected summary is empty" in empty.output
    assert "speak" in CliRunner().invoke(cli, ["--help"]).output


def test_speak_and_run_offer_the_same_dtypes_and_devices(tmp_path):
    """A misspelt --dtype or --device is a usage error before anything loads, as `run` says it (speak's --device
    was refused only as the model loaded, with exit status 1)."""
    dataset = tmp_path / "captions.parquet"
    dataset.write_bytes(b"")
    for command in (["speak", str(dataset), "--out", str(tmp_path / "v")],
                    ["run", str(tmp_path), "--out", str(dataset)]):
        result = CliRunner().invoke(cli, [*command, "--dtype", "bf16"])
        assert result.exit_code == 2
        assert "'bf16' is not one of 'auto', 'bfloat16', 'float16', 'float32'" in result.output
        result = CliRunner().invoke(cli, [*command, "--device", "gpu"])
        assert result.exit_code == 2 and "Invalid value for '--device': 'gpu': choose auto, cpu, cuda or cuda:N" in \
            result.output


def test_one_config_file_serves_the_run_at_its_top_and_speak_under_its_table(tmp_path, cache_dir, tiny_dir):
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    shutil.copy(EXAMPLES / "field" / "voice_memo.m4a", recordings)
    out = tmp_path / "captions.parquet"
    config = tmp_path / "project.toml"
    config.write_text(f'model = "tiny-random"\ntasks = ["caption"]\nmax-new-tokens = 12\ncache-dir = "{cache_dir}"\n'
                      f'greedy = true\n\n[speak]\nmodel = "tiny-random"\ncache-dir = "{cache_dir}"\n'
                      f'out = "{tmp_path / "voices"}"\ntext-column = "caption"\nspeaker = "bob"\n')
    ran = CliRunner().invoke(cli, [str(recordings), "--out", str(out), "--config", str(config), "--quiet"])
    assert ran.exit_code == 0, ran.output
    refused = CliRunner().invoke(cli, ["speak", str(out), "--config", str(config)])  # its table's speaker
    assert refused.exit_code == 1
    assert refused.output.strip().splitlines() == ["Error: unknown speaker 'bob': choose one of aiden, chelsie, ethan"]
    spoken = CliRunner().invoke(cli, ["speak", str(out), "--config", str(config), "--speaker", "chelsie"])
    assert spoken.exit_code == 0, spoken.output
    (wav,) = (tmp_path / "voices").glob("*.wav")
    assert wav.name.startswith("voice_memo.") and wav.name.endswith("-00000.wav")  # a row's caption, not a summary
    config.write_text(config.read_text() + "speakr = \"chelsie\"\n")
    misspelt = CliRunner().invoke(cli, ["speak", str(out), "--config", str(config)])
    assert misspelt.exit_code == 2
    assert f"{config} [speak]: 'speakr' is not an option of this command (did you mean 'speaker'?)" in " ".join(
        misspelt.output.split())
