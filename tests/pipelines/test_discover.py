import codecs
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from omni_caption.pipelines import InputPathError, discover
from omni_caption.file_kinds import MEDIA_EXTENSIONS
from omni_caption.pipelines.discover import NOT_LOCAL, _distinct_names
from omni_caption.pipelines.segmenter import unreadable_reason


def test_recursive_discovery_keeps_media_only(tmp_path):
    for rel in ["a.wav", "sub/b.flac", "sub/deeper/c.MP3", "v/clip.mkv", "notes.txt", "image.png",
                ".hidden/x.wav", "sub/.y.wav"]:
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    found = [s.source_path for s in discover([tmp_path])]
    assert found == ["a.wav", "sub/b.flac", "sub/deeper/c.MP3", "v/clip.mkv"]
    # One input given bare, as `run_corpus("recordings", ...)`: it was read a letter at a time.
    assert [s.source_path for s in discover(str(tmp_path))] == found == [s.source_path for s in discover(tmp_path)]
    assert [s.source_path for s in discover([], listed=str(tmp_path / "a.wav"))] == [str(tmp_path / "a.wav")]


def test_file_argument_and_duplicates(tmp_path):
    (tmp_path / "a.opus").write_bytes(b"x")
    found = discover([tmp_path / "a.opus", tmp_path])
    assert [s.source_path for s in found] == ["a.opus"]


def test_missing_path_is_refused(tmp_path):
    with pytest.raises(InputPathError, match="does not exist"):
        discover([tmp_path / "nope"])


@pytest.mark.parametrize("url", ["s3://bucket/recordings", "hf://datasets/org/audio", "https://example.com/a.wav"])
def test_a_url_is_refused_as_a_url_named_as_given(tmp_path, monkeypatch, url):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputPathError) as refused:
        discover([url])
    assert str(refused.value) == f"{url}: a URL; omni-caption reads local files and folders, so download or mount it first"


def test_a_listed_url_keeps_its_name_and_its_error_row_says_it_is_a_url(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (source,) = discover([], ["s3://bucket/a.wav"])
    assert source.source_path == "s3://bucket/a.wav"
    with pytest.raises(OSError) as unread:
        source.sha256()
    assert unreadable_reason(source, unread.value) == NOT_LOCAL
    (local,) = discover([], ["gone/b.wav"])
    with pytest.raises(OSError) as unread:
        local.sha256()
    assert unreadable_reason(local, unread.value) == "cannot read file: No such file or directory"


def test_sha256_of_bytes(tmp_path):
    import hashlib

    (tmp_path / "a.wav").write_bytes(b"hello")
    assert discover([tmp_path])[0].sha256() == hashlib.sha256(b"hello").hexdigest()


def test_a_name_that_is_not_utf8_is_stored_escaped_and_kept_apart_from_its_look_alike(tmp_path):
    raw = os.fsencode(tmp_path) + b"/caf\xe9.wav"  # Latin-1 "café": not UTF-8
    open(raw, "wb").write(b"x")
    (tmp_path / "café.wav").write_bytes(b"y")
    found = discover([tmp_path])
    assert [s.source_path for s in found] == ["caf\\xe9.wav", "café.wav"]
    for source in found:
        source.source_path.encode("utf-8")  # what Parquet needs; a surrogate would raise here
    assert found[0].sha256() != found[1].sha256()  # the file itself is still reached by its real name


def test_broken_links_named_like_recordings_are_kept_for_an_error_row(tmp_path):
    (tmp_path / "real.wav").write_bytes(b"x")
    (tmp_path / "dangling.wav").symlink_to(tmp_path / "gone.wav")
    (tmp_path / "loop_a.flac").symlink_to(tmp_path / "loop_b.flac")
    (tmp_path / "loop_b.flac").symlink_to(tmp_path / "loop_a.flac")
    (tmp_path / "twin.wav").symlink_to(tmp_path / "real.wav")
    (tmp_path / "folder.mp3").mkdir()
    (tmp_path / "notes.txt").symlink_to(tmp_path / "nowhere.txt")
    found = [s.source_path for s in discover([tmp_path])]
    # A second link to one file counts once; a folder or a non-media link is not a recording.
    assert found == ["dangling.wav", "loop_a.flac", "loop_b.flac", "real.wav"]


def test_the_same_relative_path_under_two_inputs_is_two_recordings_told_apart(tmp_path):
    for rel in ["day1/mic.wav", "day2/mic.wav", "day1/only_here.wav", "x/day1/mic.wav"]:
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rel.encode())
    found = discover([tmp_path / "day1", tmp_path / "day2"])
    assert [s.source_path for s in found] == ["day1/mic.wav", "day2/mic.wav", "only_here.wav"]
    assert len({s.sha256() for s in found}) == 3
    # Two inputs with the same folder name: more of their path tells them apart.
    found = discover([tmp_path / "day1", tmp_path / "x" / "day1"])
    names = [s.source_path for s in found]
    assert len(set(names)) == 3 and "only_here.wav" in names
    assert {n for n in names if n.endswith("mic.wav")} == {f"{tmp_path.name}/day1/mic.wav", "x/day1/mic.wav"}
    # File arguments clash by name the same way.
    found = discover([tmp_path / "day1" / "mic.wav", tmp_path / "day2" / "mic.wav"])
    assert [s.source_path for s in found] == ["day1/mic.wav", "day2/mic.wav"]


@given(st.lists(st.tuples(st.lists(st.sampled_from(["a", "b", "day1"]), min_size=0, max_size=3),
                          st.sampled_from(["mic.wav", "day1/mic.wav", "b/mic.wav", "z.wav"])),
                min_size=1, max_size=8))
def test_distinct_names_are_unique_and_leave_unshared_names_alone(raw_entries):
    entries = list(dict.fromkeys((Path("/", *folder), relative) for folder, relative in raw_entries))
    real_paths = [(folder / relative).as_posix() for folder, relative in entries]
    if len(set(real_paths)) < len(real_paths):  # one file reached twice is deduplicated before naming
        return
    names = _distinct_names(entries)
    assert len(set(names)) == len(names)
    relatives = [relative for _, relative in entries]
    for name, (folder, relative) in zip(names, entries):
        assert name.endswith(relative) and (relatives.count(relative) > 1 or name == relative)


def test_spaces_around_a_listed_path_are_dropped_only_where_the_name_without_them_is_on_disk(tmp_path, monkeypatch):
    (tmp_path / "talk.wav").write_bytes(b"a")
    (tmp_path / " spaced.wav ").write_bytes(b"b")  # a name that really has them
    monkeypatch.chdir(tmp_path)
    found = discover([], ["  talk.wav \t", " spaced.wav ", " gone.wav "])
    by_name = {s.source_path: s.path for s in found}
    assert set(by_name) == {"talk.wav", " spaced.wav ", " gone.wav "}
    assert by_name["talk.wav"].read_bytes() == b"a" and by_name[" spaced.wav "].read_bytes() == b"b"
    assert not by_name[" gone.wav "].exists()  # its error row names it as listed


def test_listed_files_keep_their_listed_paths_and_a_missing_one_is_kept(tmp_path, monkeypatch):
    from omni_caption.pipelines.discover import read_file_list

    for rel in ["2023/a.wav", "2023/notes.txt", "2024/b.flac", "2024/c.mp3", "2024/.hidden.wav"]:
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rel.encode())
    monkeypatch.chdir(tmp_path)
    listed = read_file_list(["# picked by a query\n", "2023/a.wav\n", "./2023/notes.txt\r\n", "\n",
                             "gone/x.wav\n", "2024\n", f"{tmp_path}/2024/b.flac\n"])
    assert listed == ["2023/a.wav", "./2023/notes.txt", "gone/x.wav", "2024", f"{tmp_path}/2024/b.flac"]
    found = discover([], listed)
    # As listed, whatever the extension; the folder is walked like an input; b.flac is reached twice, kept once.
    assert sorted(s.source_path for s in found) == sorted([
        "2023/a.wav", "2023/notes.txt", "gone/x.wav", "c.mp3", f"{tmp_path}/2024/b.flac"])
    assert not next(s for s in found if s.source_path == "gone/x.wav").path.exists()


def test_linked_folders_are_followed_once_and_an_unreadable_folder_is_reported(tmp_path, monkeypatch):
    archive, other_disk = tmp_path / "archive", tmp_path / "disk2" / "2023"
    for path in (archive / "2024" / "a.wav", other_disk / "b.wav", archive / "locked" / "c.wav"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(path.name.encode())
    (archive / "2023").symlink_to(other_disk)  # another disk's folder, linked in
    (archive / "2024" / "up").symlink_to(archive)  # a link back up: must not loop
    (archive / "again").symlink_to(archive / "2024")  # the same folder twice: walked once
    real_scandir = os.scandir

    def scandir(path="."):  # permission bits do not stop root (CI runs as root): the refusal is injected
        if str(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    problems: list[str] = []
    found = discover([archive], problems=problems)
    assert sorted(s.source_path for s in found) == ["2023/b.wav", "2024/a.wav"]
    assert problems == ["locked/: folder not read (Permission denied); recordings in it are left out"]


# How to make each kind with this FFmpeg; AMR it decodes but cannot encode.
MAKE_ARGS = {".spx": ("-c:a", "libspeex"), ".3gp": ("-ar", "8000", "-ac", "1", "-c:a", "aac"),
             ".3g2": ("-c:a", "aac"), ".mts": ("-f", "mpegts"), ".m2ts": ("-f", "mpegts"), ".bwf": ("-f", "wav"),
             ".rf64": ("-f", "wav", "-rf64", "always"), ".weba": ("-c:a", "libopus", "-f", "webm"),
             ".dts": ("-strict", "-2", "-c:a", "dca", "-ar", "48000"), ".mpga": ("-f", "mp3"),
             ".mxf": ("-ar", "48000", "-c:a", "pcm_s16le", "-f", "mxf_opatom"), ".vob": ("-c:a", "mp2")}


@pytest.mark.parametrize("ext", sorted(MEDIA_EXTENSIONS - {".amr"}))
def test_every_kind_discovered_is_one_ffmpeg_decodes(tmp_path, ext):
    from omni_caption.pipelines import AudioFile
    from tests.conftest import make_tone

    (source,) = discover([make_tone(tmp_path / f"t{ext}", seconds=2.0, extra=MAKE_ARGS.get(ext, ()))])
    decoded = sum(len(block) for _, block in AudioFile(source.path).blocks()) / 16000
    assert decoded == pytest.approx(2.0, abs=0.1)


def test_files_of_other_kinds_are_counted_for_the_summary(tmp_path):
    from collections import Counter

    from omni_caption.pipelines.discover import ignored_line

    for name in ["a.wav", "n1.txt", "n2.txt", "cover.JPG", "README", ".hidden.txt"] + [f"x.k{i}" for i in range(5)]:
        (tmp_path / name).write_bytes(b"x")
    ignored: Counter = Counter()
    assert [s.source_path for s in discover([tmp_path], ignored=ignored)] == ["a.wav"]
    assert ignored == Counter({".txt": 2, ".jpg": 1, "(none)": 1, ".k0": 1, ".k1": 1, ".k2": 1, ".k3": 1, ".k4": 1})
    assert ignored_line(ignored).startswith("9 files of other kinds (.txt 2, ") and ignored_line(ignored).endswith(
        ", ...), not read")
    assert ignored_line(Counter()) is None


def test_a_folder_of_speaks_wavs_found_in_the_inputs_is_not_read_but_given_by_name_it_is(tmp_path):
    """`speak --out voices/` inside the recordings: the next run captioned the talker's own WAVs as recordings."""
    from omni_caption.pipelines.discover import VOICE_JOURNAL

    for rel in ["talk.wav", "voices/talk.1a2b.wav", "voices/deeper/x.wav", "other/b.wav"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    (tmp_path / "voices" / VOICE_JOURNAL).write_text("{}\n")
    problems = []
    assert [s.source_path for s in discover([tmp_path], problems=problems)] == ["other/b.wav", "talk.wav"]
    assert problems == ["voices/: not read, it holds the WAVs `omni-caption speak` wrote (.omni-caption-voiced.jsonl); "
                        "give it as an input to caption them"]
    assert [s.source_path for s in discover([tmp_path / "voices"])] == ["deeper/x.wav", "talk.1a2b.wav"]


def test_a_recording_reached_through_a_link_and_directly_is_named_by_its_own_path(tmp_path):
    archive = tmp_path / "archive"
    (archive / "2024-11").mkdir(parents=True)
    (archive / "2024-11" / "standup.wav").write_bytes(b"standup")
    (archive / "episode.mp3").write_bytes(b"episode")
    # Both links sort before what they name: found first, they named the recordings, and a `latest`
    # link moved on next month renamed them.
    (archive / "alias.mp3").symlink_to(archive / "episode.mp3")
    (archive / "0_latest").symlink_to(archive / "2024-11")
    (archive / "2024-11" / "0_up").symlink_to(archive)  # a link back up still walks nothing twice
    found = discover([archive])
    assert [s.source_path for s in found] == ["2024-11/standup.wav", "episode.mp3"]
    assert [s.path for s in found] == [archive / "2024-11" / "standup.wav", archive / "episode.mp3"]
    # A linked folder with no real path under the input is still walked, under the link's name.
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "field.flac").write_bytes(b"field")
    (archive / "2024-11" / "disk2").symlink_to(tmp_path / "outside")
    assert "2024-11/disk2/field.flac" in [s.source_path for s in discover([archive])]


def test_a_nul_separated_list_takes_each_name_whole_newlines_and_hashes_included(tmp_path, monkeypatch):
    from omni_caption.pipelines.discover import read_file_list

    monkeypatch.chdir(tmp_path)
    names = ["take\n2.wav", "#1 intro.mp3", " spaced.flac", "plain.wav"]
    for name in names:
        (tmp_path / name).write_bytes(name.encode())
    listing = "".join(f"./{name}\0" for name in names)  # as `find . -print0` writes it
    # A text file is read in lines: the name with a newline in it arrives split over two.
    listed = read_file_list(listing.splitlines(keepends=True))
    assert listed == [f"./{name}" for name in names]
    from omni_caption.pipelines.discover import decode_file_list

    assert decode_file_list(listing.encode()) == listed  # as --files-from reads it: no entry after the last NUL
    assert sorted(s.path.read_bytes() for s in discover([], listed)) == sorted(name.encode() for name in names)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-8-sig", "utf-8"])
def test_a_list_saved_as_utf16_by_windows_tools_reads_as_its_names(encoding):
    """PowerShell's `>` writes UTF-16 with a byte-order mark: read as UTF-8, every other character was a NUL."""
    from omni_caption.pipelines.discover import decode_file_list

    text = "# picked in Explorer\r\nmeetings/café.wav\r\nfield/night 🎙.flac\r\n"
    data = text.encode(encoding)
    if encoding == "utf-16-be":
        data = codecs.BOM_UTF16_BE + data
    assert decode_file_list(data) == ["meetings/café.wav", "field/night 🎙.flac"]


def test_a_list_naming_a_file_whose_name_is_not_utf8_reaches_that_file(tmp_path, monkeypatch):
    from omni_caption.pipelines.discover import decode_file_list

    monkeypatch.chdir(tmp_path)
    (tmp_path / b"caf\xe9.wav".decode("utf-8", "surrogateescape")).write_bytes(b"latin-1 name")
    (listed,) = decode_file_list(b"caf\xe9.wav\n")
    assert Path(listed).read_bytes() == b"latin-1 name"


def test_a_name_given_or_listed_in_the_other_unicode_form_reaches_the_file(tmp_path, monkeypatch):
    """`café` typed is composed (NFC); copied from a Mac, the file is named decomposed (NFD): it 'did not exist'."""
    import unicodedata

    monkeypatch.chdir(tmp_path)
    on_disk = unicodedata.normalize("NFD", "réunion")
    (tmp_path / on_disk).mkdir()
    (tmp_path / on_disk / unicodedata.normalize("NFD", "café.wav")).write_bytes(b"x")
    typed = unicodedata.normalize("NFC", "réunion")
    assert typed != on_disk
    (found,) = discover([typed])
    assert found.path.read_bytes() == b"x" and found.source_path == unicodedata.normalize("NFD", "café.wav")
    (listed,) = discover([], [unicodedata.normalize("NFC", "réunion/café.wav")])
    assert listed.path.read_bytes() == b"x"


def test_inputs_with_no_recording_stop_the_run_saying_what_they_hold_and_write_nothing(tmp_path):
    """An unmounted share is an empty folder: the run wrote an empty dataset and exited 0."""
    from collections import Counter

    from omni_caption.pipelines import run_corpus
    from omni_caption.pipelines.discover import NoRecordingsFound, check_found

    mount = tmp_path / "mnt" / "recordings"
    mount.mkdir(parents=True)
    (mount / ".hidden.wav").write_bytes(b"x")
    with pytest.raises(NoRecordingsFound, match=r"^no recordings in .*recordings: no files at all \(hidden ones "
                                                r"aside\); nothing was written$"):
        run_corpus([mount], tmp_path / "x.parquet")
    assert not (tmp_path / "x.parquet").exists() and not (tmp_path / "x.parquet.parts").exists()
    with pytest.raises(NoRecordingsFound, match="the --files-from list: it names no file"):
        check_found([], [], [], Counter())
    with pytest.raises(NoRecordingsFound, match=r"in a: locked/: folder not read; 2 files of other kinds \(.zip 2\)"):
        check_found([], ["a"], ["locked/: folder not read"], Counter({".zip": 2}))
