"""Reading an uploaded file whether it came plain or gzip-compressed.

A gzip file is recognised by its content, not its name, and is decompressed as a stream:
nothing is ever unpacked to disk or held whole. Its decompressed size is capped like an
upload's, so a small file that inflates to terabytes (a "gzip bomb") stops at the cap.
"""

import gzip
import io
import zlib

GZIP_MAGIC = b"\x1f\x8b"


class InputError(ValueError):
    """The file cannot be read as it claims to be: truncated or corrupt gzip, or too big."""


def is_gzip(file: io.BufferedIOBase) -> bool:
    start = file.tell()
    magic = file.read(len(GZIP_MAGIC))
    file.seek(start)
    return magic == GZIP_MAGIC


def peek(file: io.BufferedIOBase, size: int) -> bytes:
    """Up to `size` bytes from the start of the CSV in a file that may still be arriving:
    a gzip file cut anywhere gives what its first part decompresses to."""
    file.seek(0)
    if not is_gzip(file):
        return file.read(size)
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)  # gzip framing
    head = b""
    while len(head) < size and (compressed := file.read(1 << 16)):
        try:
            head += inflater.decompress(compressed, size - len(head))
        except zlib.error:
            raise InputError("the file is not valid gzip") from None
    return head


def open_input(file: io.BufferedIOBase, *, limit: int) -> io.BufferedIOBase:
    """The file's CSV bytes: `file` itself, or a decompressing reader over it."""
    if is_gzip(file):
        return CappedGzipReader(file, limit)
    return file


class CappedGzipReader(gzip.GzipFile):
    """A gzip stream that refuses to inflate past `limit` bytes and reports corrupt input
    as InputError, with a reason a user can act on."""

    def __init__(self, file: io.BufferedIOBase, limit: int) -> None:
        super().__init__(fileobj=file, mode="rb")
        self.limit = limit
        self.compressed = file

    def read(self, size: int | None = -1) -> bytes:
        try:
            data = super().read(size)
        except (EOFError, gzip.BadGzipFile, zlib.error) as error:
            raise InputError(f"the gzip file is damaged or cut short ({error})") from None
        if self.tell() > self.limit:
            raise InputError(f"the file decompresses to more than the limit of {self.limit} bytes")
        return data

    def compressed_offset(self) -> int:
        """How far into the compressed file reading has come (to within a read-ahead)."""
        return self.compressed.tell()
