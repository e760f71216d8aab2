"""MP4 video files of a LeRobot dataset: encode an episode's frames, decode an episode's span.

Writing: H.264 (libx264, from PyAV's bundled FFmpeg), yuv420p, CRF 18, one key frame every ``fps``
frames (one a second), one encoder thread (the same frames make the same bytes on every machine). H.264/yuv420p is
what every decoder (browsers, ffmpeg, hardware decoders,
LeRobot's own torchcodec/pyav backends) reads, and libx264 is fast on a CPU; AV1 (LeRobot's default)
is smaller but several times slower to encode.

Reading: any codec FFmpeg decodes (DROID-in-LeRobot uses AV1, decoded by dav1d). In LeRobot v3.0
many episodes share one mp4; an episode is the time span ``[from_timestamp, to_timestamp)`` of its
file, and frame k of the episode is the frame shown at ``from_timestamp + k / fps``.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

VIDEO_PIX_FMT = "yuv420p"
ENCODER_THREADS = 1  # see encode_video: the same frames give the same bytes on any machine
# Encoders in order of preference: (FFmpeg encoder, codec name for info.json's "video.codec", options).
# CRF 18 is visually lossless for H.264 (sim frames decode at > 40 dB PSNR); libsvtav1 (LeRobot's own
# choice) is the fallback for a PyAV build without libx264.
VIDEO_ENCODERS = (
    ("libx264", "h264", {"crf": "18", "preset": "veryfast"}),
    ("libsvtav1", "av1", {"crf": "25", "preset": "8"}),
)


def video_encoder() -> tuple[str, str, dict[str, str]]:
    """The first encoder of :data:`VIDEO_ENCODERS` that this PyAV build has."""
    for encoder, codec_name, options in VIDEO_ENCODERS:
        if encoder in av.codecs_available:
            return encoder, codec_name, options
    raise RuntimeError(
        f"PyAV's FFmpeg has none of the video encoders {[e for e, _, _ in VIDEO_ENCODERS]}; install a PyAV wheel "
        "from PyPI (they bundle libx264)"
    )


class VideoDecodeError(ValueError):
    """A video file is missing, unreadable, or lacks the frames an episode's metadata promises."""


def encode_video(path: str | Path, frames: np.ndarray, fps: int) -> None:
    """Write ``frames`` uint8 [T, H, W, 3] (RGB) to ``path`` as an mp4 at ``fps`` (H.264, see :func:`video_encoder`).

    ``path`` should be a temporary name (see ``jepa_mpc_foundation.atomic_files.atomic_path``): a failure part-way
    leaves a broken file there. H and W must be even (yuv420p halves the chroma planes).
    """
    num_frames, height, width, _ = frames.shape
    if height % 2 or width % 2:
        raise ValueError(f"video frames must have even height and width for {VIDEO_PIX_FMT}, got {height}x{width}")
    # The container is named explicitly: the temporary name's suffix (".tmp") says nothing about it.
    with av.open(str(path), mode="w", format="mp4") as container:
        encoder, _, options = video_encoder()
        stream = container.add_stream(encoder, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, VIDEO_PIX_FMT
        # One encoder thread: libx264's threads (as many as the CPUs this process may use, from 128 px up)
        # split each frame into slices, so the bytes would depend on the machine and its load. One thread
        # makes the same frames the same file everywhere (issue 29, part 4); encoding is a small share of
        # collection's time.
        stream.thread_count = ENCODER_THREADS
        stream.time_base = Fraction(1, fps)
        # A key frame every second keeps seeking into long episodes cheap.
        stream.options = options | {"g": str(max(1, fps))}
        for t in range(num_frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frames[t]), format="rgb24")
            frame.pts = t
            container.mux(stream.encode(frame))
        container.mux(stream.encode())  # flush the encoder's delayed frames


def decode_video_span(
    path: str | Path,
    from_timestamp: float,
    num_frames: int,
    fps: float,
    keep: np.ndarray | None = None,
) -> np.ndarray:
    """Decode an episode's frames from ``path``: uint8 [K, H, W, 3] RGB.

    The episode's frame k is the frame whose presentation time is nearest ``from_timestamp + k / fps``
    (k in [0, num_frames)). ``keep`` (sorted int array of frame numbers within the episode) selects
    frames; decoding stops after the last one. Default: all ``num_frames`` frames.
    Raises :class:`VideoDecodeError` naming the file when a requested frame is not in it.
    """
    path = Path(path)
    keep = np.arange(num_frames) if keep is None else np.asarray(keep, dtype=np.int64)
    if keep.size == 0:
        raise ValueError("decode_video_span: no frames requested")
    if keep.min() < 0 or keep.max() >= num_frames:
        raise ValueError(f"decode_video_span: frame numbers {keep.tolist()} outside [0, {num_frames})")
    if not path.is_file():
        raise VideoDecodeError(f"video file {path} does not exist")
    wanted = {int(k): i for i, k in enumerate(keep)}
    last_wanted = int(keep.max())
    out: list[np.ndarray | None] = [None] * len(keep)
    half_frame = 0.5 / fps
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            if from_timestamp > half_frame:
                # Jump to the key frame at or before the span; decoding goes forward from there.
                container.seek(int(from_timestamp / stream.time_base), stream=stream, backward=True, any_frame=False)
            for frame in container.decode(stream):
                k = int(round((frame.time - from_timestamp) * fps))
                if abs(frame.time - (from_timestamp + k / fps)) > half_frame or k < 0:
                    continue
                if k in wanted:
                    out[wanted[k]] = frame.to_ndarray(format="rgb24")
                if k >= last_wanted:
                    break
    except av.FFmpegError as error:
        raise VideoDecodeError(f"cannot decode video file {path}: {error}") from error
    missing = [int(keep[i]) for i, f in enumerate(out) if f is None]
    if missing:
        raise VideoDecodeError(
            f"video file {path} lacks frame(s) {missing[:5]}{'...' if len(missing) > 5 else ''} of the span "
            f"starting at {from_timestamp:.4f} s ({num_frames} frames at {fps} fps)"
        )
    return np.stack(out)  # type: ignore[arg-type]
