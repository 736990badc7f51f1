"""The folder store: entries as files, shared by every worker of one machine.

Layout, under the store's folder (``DIR/cache`` by default)::

    entries/<h[:2]>/<h>      one entry per URL, <h> the SHA-256 of its key
    index/<i>/<h>            empty files: the entries of a tag or a path (<i> its SHA-256)
    locks/<h[:2]>/<h>        a URL's render lock: "until holder", or empty when free
    epoch                    changes at every purge
    .purge.lock              flock: shared while an entry is stored, exclusive while purging

An entry is written to a temporary file and renamed into place, so a reader sees a whole
entry or none. Each process remembers the entries it read, by their file's identity (inode,
times and size, which any new file changes): a hit is then one ``stat``. A lock file is
changed under ``flock``, so two workers never both take it; it expires by its time, so a
worker that died holding it stops no one for longer than that. A purge and a store exclude
each other, so a render that began before a purge is never stored after it (see
:meth:`FolderStore.put`).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import secrets
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from . import DecodedEntries, Entry, StoreError, index_names, now


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


FileIdentity = tuple[int, int, int, int]


class FolderStore:
    """A :class:`~flask_ondemand.stores.Store` in a folder, made when first written."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder).absolute()
        self._entries = os.path.join(self.folder, "entries")
        #: Entry file -> the entry, by the file's identity when read.
        self._read = DecodedEntries()

    def __repr__(self) -> str:
        return f"FolderStore({str(self.folder)!r})"

    def _entry_file(self, key: str) -> str:
        name = _digest(key)
        return f"{self._entries}/{name[:2]}/{name}"

    def get(self, key: str) -> Entry | None:
        path = self._entry_file(key)

        def read() -> tuple[object, bytes]:
            with open(path, "rb") as file:
                return _identity(os.fstat(file.fileno())), file.read()  # of what is read

        try:
            return self._read.get(path, _identity(os.stat(path)), read)
        except FileNotFoundError:
            return None
        except OSError as error:
            raise StoreError(f"{self}: {error}") from error

    def put(self, key: str, entry: Entry, *, keep_for: float, epoch: str) -> bool:
        target = Path(self._entry_file(key))
        try:
            with self._purges(shared=True):
                if self.epoch() != epoch:
                    return False
                for index in index_names([entry.path], entry.tags):
                    marker = self.folder / "index" / _digest(index) / target.name
                    marker.parent.mkdir(parents=True, exist_ok=True)
                    marker.touch()
                target.parent.mkdir(parents=True, exist_ok=True)
                temporary = target.with_name(f".{target.name}.{secrets.token_hex(4)}")
                try:
                    temporary.write_bytes(entry.to_bytes())
                    os.replace(temporary, target)
                finally:
                    temporary.unlink(missing_ok=True)
        except OSError as error:  # full, read-only, or not ours
            raise StoreError(f"{self}: {error}") from error
        return True

    def epoch(self) -> str:
        try:
            return (self.folder / "epoch").read_text()
        except FileNotFoundError:
            return ""
        except OSError as error:
            raise StoreError(f"{self}: {error}") from error

    def _lock_file(self, key: str) -> Path:
        name = _digest(key)
        return self.folder / "locks" / name[:2] / name

    def lock(self, key: str, holder: str, until: float) -> bool:
        path = self._lock_file(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with _flocked(path, fcntl.LOCK_EX) as descriptor:
                held_until, held_by = _read_lock(descriptor)
                if held_by and held_by != holder and held_until > now():
                    return False
                os.ftruncate(descriptor, 0)
                os.pwrite(descriptor, f"{until!r} {holder}".encode(), 0)
                return True
        except OSError as error:
            raise StoreError(f"{self}: {error}") from error

    def locked(self, key: str) -> bool:
        path = self._lock_file(key)
        try:
            with _flocked(path, fcntl.LOCK_SH, create=False) as descriptor:
                held_until, held_by = _read_lock(descriptor)
        except FileNotFoundError:
            return False
        except OSError as error:
            raise StoreError(f"{self}: {error}") from error
        return bool(held_by) and held_until > now()

    def unlock(self, key: str, holder: str) -> None:
        path = self._lock_file(key)
        try:
            with _flocked(path, fcntl.LOCK_EX, create=False) as descriptor:
                if _read_lock(descriptor)[1] == holder:
                    os.ftruncate(descriptor, 0)
        except FileNotFoundError:
            pass
        except OSError as error:
            raise StoreError(f"{self}: {error}") from error

    def purge(self, *, paths: Iterable[str] = (), tags: Iterable[str] = ()) -> int:
        names = index_names(paths, tags)
        if not names or not self.folder.parent.is_dir():
            return 0  # nowhere a server could have stored anything
        purged = 0
        try:
            with self._purges(shared=False):
                self._new_epoch()
                for index in names:
                    folder = self.folder / "index" / _digest(index)
                    try:
                        markers = os.listdir(folder)
                    except FileNotFoundError:
                        continue
                    for name in markers:
                        try:
                            (self.folder / "entries" / name[:2] / name).unlink()
                            purged += 1
                        except FileNotFoundError:
                            pass
                    shutil.rmtree(folder, ignore_errors=True)
        except OSError as error:
            raise StoreError(f"{self}: {error}") from error
        return purged

    def clear(self) -> int:
        if not self.folder.parent.is_dir():
            return 0
        try:
            with self._purges(shared=False):
                self._new_epoch()
                entries = self.folder / "entries"
                count = sum(len(files) for _, _, files in os.walk(entries))
                for name in ("entries", "index"):
                    if (self.folder / name).is_dir():
                        # Renamed away first: readers then see no entry at once.
                        gone = self.folder / f".{name}.{secrets.token_hex(4)}"
                        os.rename(self.folder / name, gone)
                        shutil.rmtree(gone, ignore_errors=True)
        except OSError as error:
            raise StoreError(f"{self}: {error}") from error
        return count

    def _new_epoch(self) -> None:
        temporary = self.folder / f".epoch.{secrets.token_hex(4)}"
        temporary.write_text(secrets.token_hex(8))
        os.replace(temporary, self.folder / "epoch")

    @contextmanager
    def _purges(self, *, shared: bool) -> Iterator[None]:
        self.folder.mkdir(parents=True, exist_ok=True)
        with _flocked(self.folder / ".purge.lock", fcntl.LOCK_SH if shared else fcntl.LOCK_EX):
            yield


def _identity(status: os.stat_result) -> FileIdentity:
    """What tells a file from any that replaced it: a rename puts another inode there."""
    return (status.st_ino, status.st_mtime_ns, status.st_ctime_ns, status.st_size)


@contextmanager
def _flocked(path: Path, operation: int, *, create: bool = True) -> Iterator[int]:
    """Open ``path`` and hold ``flock(operation)`` on it for the block."""
    flags = os.O_RDWR | (os.O_CREAT if create else 0)
    descriptor = os.open(path, flags, 0o644)
    try:
        fcntl.flock(descriptor, operation)
        yield descriptor
    finally:
        os.close(descriptor)  # releases the flock


def _read_lock(descriptor: int) -> tuple[float, str]:
    """A lock file's "until holder", or (0, "") for a free one."""
    text = os.pread(descriptor, 512, 0).decode("utf-8", "replace")
    until, _, holder = text.partition(" ")
    try:
        return float(until), holder
    except ValueError:
        return 0.0, ""
