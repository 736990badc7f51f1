"""The route cache's stores (flask_ondemand/stores/): what the cache asks of any store, checked
against the folder store and the Redis store (Debian's redis-server on a loopback port), and
how ``ONDEMAND_CACHE_URL`` picks one."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from flask_ondemand.errors import ConfigError
from flask_ondemand.stores import CLOCK_VARIABLE, MAGIC, Entry, Store, StoreError, open_store
from flask_ondemand.stores.folder import FolderStore
from flask_ondemand.stores.redis import RedisStore

from .servers import free_port, redis_server


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with redis_server(tmp_path_factory.mktemp("redis")) as server:
        yield server.url


@pytest.fixture
def clock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The cache's clock, as a file the test moves."""
    path = tmp_path / "clock"
    path.write_text(repr(time.time()))
    monkeypatch.setenv(CLOCK_VARIABLE, str(path))
    return path


def move(clock: Path, seconds: float) -> None:
    clock.write_text(repr(float(clock.read_text()) + seconds))


@pytest.fixture(params=["folder", "redis"])
def stores(request: pytest.FixtureRequest, tmp_path: Path, clock: Path) -> tuple[Store, Store]:
    """Two stores on the same storage: two workers, or two machines, sharing it."""
    if request.param == "folder":
        return FolderStore(tmp_path / "store"), FolderStore(tmp_path / "store")
    url = request.getfixturevalue("redis_url")
    first = RedisStore(url)
    first.client.flushdb()
    return first, RedisStore(url)


def entry(path: str = "/prices/", tags: tuple[str, ...] = ("prices",), body: bytes = b"x") -> Entry:
    return Entry(200, "OK", (("Content-Type", "text/html"),), body, 1.5, "prices", "v1", tags, path)


def test_an_entry_is_read_back_whole_by_another_store(stores: tuple[Store, Store]) -> None:
    one, other = stores
    stored = Entry(
        404,
        "No Posts Found",
        (("Content-Type", "text/html; charset=utf-8"), ("X-Two", "a"), ("X-Two", "b")),
        b"\x00binary\nbody\xff",
        1234.5,
        "blog.post",
        "0123456789abcdef",
        ("posts", "blog"),
        "/posts/caf\xc3\xa9/",
        '"etag"',
    )
    assert one.get("/posts/caf\xc3\xa9/?a=1") is None
    assert one.put("/posts/caf\xc3\xa9/?a=1", stored, keep_for=60, epoch=one.epoch())
    assert other.get("/posts/caf\xc3\xa9/?a=1") == stored
    assert other.get("/posts/caf\xc3\xa9/") is None  # another key


def test_what_a_store_remembers_never_outlives_a_change(stores: tuple[Store, Store]) -> None:
    """A process remembers the entries it read; another's put or purge is seen at once."""
    one, other = stores
    for body in (b"first", b"second", b"third"):  # the same size: only the file changed
        assert other.put("/prices/", entry(body=body[:5]), keep_for=60, epoch=other.epoch())
        assert one.get("/prices/") == entry(body=body[:5])
        assert one.get("/prices/") == entry(body=body[:5])
    other.purge(paths=["/prices/"])
    assert one.get("/prices/") is None


def test_purges_by_path_and_by_tag(stores: tuple[Store, Store]) -> None:
    one, other = stores
    for key, path, tags in [
        ("/prices/", "/prices/", ("prices",)),
        ("/prices/?page=2", "/prices/", ("prices",)),
        ("/stock/", "/stock/", ("prices", "stock")),
        ("/news/", "/news/", ("news",)),
        ("/tag/", "/tag/", ("/news/",)),  # a tag that looks like a path is a tag
    ]:
        assert one.put(key, entry(path, tags), keep_for=60, epoch=one.epoch())
    assert other.purge(paths=["/prices/"]) == 2
    assert one.get("/prices/?page=2") is None
    assert one.get("/stock/") is not None
    assert other.purge(tags=["stock"]) == 1
    assert other.purge(paths=["/news/"]) == 1
    assert one.get("/tag/") is not None
    assert other.purge(tags=["nothing"], paths=["/nothing/"]) == 0
    assert other.clear() == 1
    assert one.get("/tag/") is None


def test_an_entry_rendered_before_a_purge_is_not_stored(stores: tuple[Store, Store]) -> None:
    one, other = stores
    epoch = one.epoch()  # a render begins
    other.purge(tags=["prices"])  # a purge meanwhile, here or elsewhere
    assert not one.put("/prices/", entry(), keep_for=60, epoch=epoch)
    assert one.get("/prices/") is None
    assert one.put("/prices/", entry(), keep_for=60, epoch=one.epoch())


def test_one_lock_holder_at_a_time_until_it_expires(
    stores: tuple[Store, Store], clock: Path
) -> None:
    one, other = stores
    until = float(clock.read_text()) + 30
    assert not one.locked("/prices/")
    assert one.lock("/prices/", "worker-1", until)
    assert not other.lock("/prices/", "worker-2", until)
    assert one.lock("/prices/", "worker-1", until + 10)  # its holder may hold it longer
    assert other.locked("/prices/")
    assert other.lock("/stock/", "worker-2", until)  # another URL's lock
    other.unlock("/prices/", "worker-2")  # not its lock: nothing happens
    assert one.locked("/prices/")
    one.unlock("/prices/", "worker-1")
    assert not other.locked("/prices/")
    assert other.lock("/prices/", "worker-2", until)
    move(clock, 31)  # the holder died: its lock expires by the clock
    assert not one.locked("/prices/")
    assert one.lock("/prices/", "worker-1", until + 60)


def test_a_corrupt_entry_is_none(stores: tuple[Store, Store], tmp_path: Path) -> None:
    one, _ = stores
    whole = entry().to_bytes()
    for damaged in [whole[:10], whole[: len(MAGIC) + 5], b"garbage", MAGIC + b'{"status": "x"}\n']:
        if isinstance(one, FolderStore):
            one.put("/prices/", entry(), keep_for=60, epoch=one.epoch())
            files = [p for p in (tmp_path / "store/entries").rglob("*") if p.is_file()]
            files[0].write_bytes(damaged)
        else:
            assert isinstance(one, RedisStore)
            one.client.set("flask_ondemand:e:/prices/", damaged)
        assert one.get("/prices/") is None


def test_a_store_that_fails_raises_store_error(tmp_path: Path, clock: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    broken = FolderStore(tmp_path / "file" / "store")
    down = RedisStore(f"redis://127.0.0.1:{free_port()}/0")
    for store in (broken, down):
        with pytest.raises(StoreError):
            store.put("/prices/", entry(), keep_for=60, epoch="")
        with pytest.raises(StoreError):
            store.lock("/prices/", "worker", time.time() + 30)
    with pytest.raises(StoreError):
        down.get("/prices/")
    with pytest.raises(StoreError, match=r"RedisStore\('redis://user:\*\*\*@"):
        RedisStore(f"redis://user:secret@127.0.0.1:{free_port()}/0").epoch()


def test_the_cache_url_picks_the_store(tmp_path: Path) -> None:
    assert open_store(None, default_folder=None) is None
    for url, folder, default in [
        (None, tmp_path / "dist/cache", tmp_path / "dist/cache"),
        (str(tmp_path / "elsewhere"), tmp_path / "elsewhere", None),
        (f"file://{tmp_path}/there", tmp_path / "there", None),
    ]:
        store = open_store(url, default_folder=default)
        assert isinstance(store, FolderStore)
        assert store.folder == folder
    for redis_url in ("redis://cache:6379/1", "rediss://cache/0", "unix:///run/redis.sock"):
        assert isinstance(open_store(redis_url, default_folder=None), RedisStore)
    for wrong in ("", "memcached://cache:11211", 6379):
        with pytest.raises(ConfigError, match="ONDEMAND_CACHE_URL"):
            open_store(wrong, default_folder=None)  # type: ignore[arg-type]
