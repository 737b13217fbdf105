"""What the scan for streams that change format partway costs, beside the decode pass it comes before.

    python bench/format_scan.py [--minutes 20] [--formats mp3,m4a,ogg,opus]

Builds a podcast-like recording per format (44.1 kHz stereo; Opus at 48 kHz)
from espeak-ng speech looped with pauses (a voiced buzz where espeak-ng is
missing), then times `stream_changes` (torchcodec with no conversion) and one
`AudioFile.blocks()` pass (decoded to 16 kHz mono), each as x realtime.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from segmentation import build_recordings  # noqa: E402

CODECS = {"mp3": ["-c:a", "libmp3lame", "-b:a", "128k", "-ar", "44100"],
          "m4a": ["-c:a", "aac", "-b:a", "128k", "-ar", "44100"],
          "ogg": ["-c:a", "libvorbis", "-q:a", "4", "-ar", "44100"],
          "opus": ["-c:a", "libopus", "-b:a", "64k", "-ar", "48000"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=20)
    parser.add_argument("--formats", default="mp3,m4a,ogg,opus")
    args = parser.parse_args()

    import torch
    import torchcodec

    from omni_caption.pipelines import AudioFile
    from omni_caption.pipelines.changing_streams import CHANGEABLE_CODECS, stream_changes

    torch.set_num_threads(1)
    print(f"python {platform.python_version()}  torch {torch.__version__}  torchcodec {torchcodec.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        (source,) = build_recordings(Path(tmp), args.minutes, "flac")
        print(f"{'format':<6} {'codec':<8} {'scanned':<8} {'scan':>14} {'decode pass':>16}  scan / decode")
        for fmt in args.formats.split(","):
            path = Path(tmp) / f"podcast.{fmt}"
            subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(source), "-ac", "2", *CODECS[fmt],
                            str(path)], check=True)
            audio = AudioFile(path)
            codec = audio._codec
            started = time.perf_counter()
            changes = stream_changes(path, codec)
            scan_s = time.perf_counter() - started
            assert changes is None, changes
            started = time.perf_counter()
            seconds = sum(len(block) for _start, block in audio.blocks()) / 16000
            decode_s = time.perf_counter() - started
            scanned = codec in CHANGEABLE_CODECS
            scan = f"{scan_s:5.2f} s {seconds / max(scan_s, 1e-9):5.0f}x" if scanned else "-"
            print(f"{fmt:<6} {codec:<8} {'yes' if scanned else 'no':<8} {scan:>14} "
                  f"{decode_s:6.2f} s {seconds / decode_s:5.0f}x  "
                  f"{f'{scan_s / decode_s:.2f}' if scanned else '-'}")


if __name__ == "__main__":
    main()
