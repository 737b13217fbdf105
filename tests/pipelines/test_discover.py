import pytest

from omni_caption.pipelines import InputPathError, discover


def test_recursive_discovery_keeps_media_only(tmp_path):
    for rel in ["a.wav", "sub/b.flac", "sub/deeper/c.MP3", "v/clip.mkv", "notes.txt", "image.png",
                ".hidden/x.wav", "sub/.y.wav"]:
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    found = [s.source_path for s in discover([tmp_path])]
    assert found == ["a.wav", "sub/b.flac", "sub/deeper/c.MP3", "v/clip.mkv"]


def test_file_argument_and_duplicates(tmp_path):
    (tmp_path / "a.opus").write_bytes(b"x")
    found = discover([tmp_path / "a.opus", tmp_path])
    assert [s.source_path for s in found] == ["a.opus"]


def test_missing_path_is_refused(tmp_path):
    with pytest.raises(InputPathError, match="does not exist"):
        discover([tmp_path / "nope"])


def test_sha256_of_bytes(tmp_path):
    import hashlib

    (tmp_path / "a.wav").write_bytes(b"hello")
    assert discover([tmp_path])[0].sha256() == hashlib.sha256(b"hello").hexdigest()
