"""The stdio transport's pipes are widened where the kernel allows it, and left alone where it does not."""

import os

import pytest

from gpt_image_2_mcp.entrypoints.stdio_pipes import PIPE_BYTES, widen_pipes

fcntl = pytest.importorskip("fcntl")

linux_pipes = pytest.mark.skipif(not hasattr(fcntl, "F_GETPIPE_SZ"), reason="pipe sizes are a Linux feature")


def _max_pipe_bytes() -> int:
    with open("/proc/sys/fs/pipe-max-size") as limit:
        return int(limit.read())


@linux_pipes
def test_both_ends_of_a_pipe_get_the_wider_buffer():
    if _max_pipe_bytes() < PIPE_BYTES:
        pytest.skip("this system caps pipes below 1 MiB")
    read_end, write_end = os.pipe()
    try:
        assert fcntl.fcntl(write_end, fcntl.F_GETPIPE_SZ) < PIPE_BYTES  # the kernel's default, 64 KiB
        widen_pipes((read_end, write_end))
        assert fcntl.fcntl(read_end, fcntl.F_GETPIPE_SZ) == PIPE_BYTES
        # A whole preview-sized result now fits without a reader on the other end.
        assert os.write(write_end, b"x" * 800_000) == 800_000
    finally:
        os.close(read_end)
        os.close(write_end)


@linux_pipes
def test_files_and_closed_descriptors_are_left_alone(tmp_path):
    with open(tmp_path / "log.txt", "wb") as file:
        widen_pipes((file.fileno(),))  # a regular file has no pipe buffer: nothing is asked, nothing fails
        file.write(b"still writable")
    read_end, write_end = os.pipe()
    os.close(read_end)
    os.close(write_end)
    widen_pipes((read_end, write_end))  # closed: no error reaches the server's start-up
