#!/usr/bin/env bash
# Regenerates examples/recordings/ from text with espeak-ng + ffmpeg.
# The committed files were made by this script; it is kept so anyone can rebuild
# or extend the demo corpus. Pauses are written as explicit silences so the
# segmentation tests of later stages have known cut points.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$here/recordings"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out/meetings" "$out/field"

say() {  # say VOICE TEXT OUT.wav
  espeak-ng -v "$1" -s 150 -w "$3" "$2"
}
silence() {  # silence SECONDS OUT.wav
  ffmpeg -loglevel error -y -f lavfi -i "anullsrc=r=22050:cl=mono" -t "$1" -c:a pcm_s16le "$2"
}
join() {  # join OUT.wav IN.wav...
  local target="$1"; shift
  local list="$tmp/list.txt"; : > "$list"
  for f in "$@"; do echo "file '$f'" >> "$list"; done
  ffmpeg -loglevel error -y -f concat -safe 0 -i "$list" -c:a pcm_s16le "$target"
}

silence 0.8 "$tmp/p.wav"
say en-us "Good morning everyone. Let's start the weekly planning meeting." "$tmp/m1.wav"
say en-gb "Thanks. First item on the agenda is the budget for the field recordings." "$tmp/m2.wav"
say en-us "We spent about four thousand euros on microphones and travel last quarter." "$tmp/m3.wav"
say en-gb "That is within plan. Next, the transcription backlog." "$tmp/m4.wav"
say en-us "We have around forty hours of interviews waiting to be captioned." "$tmp/m5.wav"
say en-gb "Let's run them through the captioning pipeline tonight and review tomorrow." "$tmp/m6.wav"
join "$tmp/meeting.wav" "$tmp/m1.wav" "$tmp/p.wav" "$tmp/m2.wav" "$tmp/p.wav" "$tmp/m3.wav" \
  "$tmp/p.wav" "$tmp/m4.wav" "$tmp/p.wav" "$tmp/m5.wav" "$tmp/p.wav" "$tmp/m6.wav"
ffmpeg -loglevel error -y -i "$tmp/meeting.wav" -ac 1 -ar 16000 -c:a libopus -b:a 24k "$out/meetings/weekly_planning.opus"

say en-us "Welcome back to the show. Today we talk about birds in the city, and why they sing louder at dawn." "$tmp/c1.wav"
say en-us "Researchers found that traffic noise pushes many species to higher pitches." "$tmp/c2.wav"
join "$tmp/podcast.wav" "$tmp/c1.wav" "$tmp/p.wav" "$tmp/c2.wav"
ffmpeg -loglevel error -y -i "$tmp/podcast.wav" -ac 1 -ar 22050 -c:a libmp3lame -b:a 32k "$out/podcast_episode.mp3"

say de "Es ist sechs Uhr morgens am Fluss. Man hört Vögel und etwas Wind." "$tmp/f1.wav"
ffmpeg -loglevel error -y -i "$tmp/f1.wav" -ac 1 -ar 16000 -c:a flac "$out/field/river_morning.flac"

say en-us "This is a short voice memo about the interview schedule." "$tmp/v1.wav"
ffmpeg -loglevel error -y -i "$tmp/v1.wav" -ac 1 -ar 16000 -c:a aac -b:a 32k "$out/field/voice_memo.m4a"

# Not audio: shows that a file with an audio extension that fails to decode
# becomes one error row while the run goes on.
printf 'this is a text file, not an mp3\n' > "$out/not_really_audio.mp3"
printf 'Demo corpus made with espeak-ng by ../make_recordings.sh\n' > "$out/README.txt"
du -sh "$out"
