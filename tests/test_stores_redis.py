"""The Redis store (flask_ondemand/stores/redis.py) under real servers: two gunicorn servers on
two ports sharing one Debian redis-server are one site (an entry, a purge and a render lock are
the same for both), and with Redis stopped mid-test every page still answers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from .servers import fetch, flask, redis_server
from .test_caching import CACHE_APP, TOKEN, CacheSite, build_cache_site, serving, status_of


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[CacheSite, CacheSite]]:
    folder = tmp_path_factory.mktemp("shared")
    with redis_server(folder / "redis") as redis:
        project, run, env = build_cache_site(folder)
        env = {**env, "FLASK_ONDEMAND_CACHE_URL": redis.url}
        with serving(project, run, env) as one, serving(project, run, env) as two:
            yield one, two


def test_two_servers_share_entries(shared: tuple[CacheSite, CacheSite]) -> None:
    one, two = shared
    path = "/prices/?t=shared"
    assert status_of(one.get(path)) == "flask-ondemand; fwd=uri-miss; stored"
    hit = two.get(path)
    assert (hit.text, status_of(hit)[:20]) == ("Prices v1", "flask-ondemand; hit;")
    assert one.renders(path) == 1
    assert not (one.out / "cache").exists()  # nothing in the folder store


def test_a_purge_on_one_server_is_seen_by_the_other(shared: tuple[CacheSite, CacheSite]) -> None:
    one, two = shared
    for site in (one, two):
        site.get("/stock/shared/")
        site.get("/prices/?t=purged")
    assert one.renders("/stock/shared/") == 1
    hook = {"Authorization": f"Bearer {TOKEN}"}
    body = json.dumps({"paths": ["/prices/"]})
    done = fetch(two.url, "/_ondemand/revalidate", method="POST", body=body, headers=hook)
    assert json.loads(done.body)["purged"] >= 1
    assert status_of(one.get("/prices/?t=purged")).endswith("; stored")  # rendered again
    assert fetch(one.url, "/purge/stock", method="POST").status == 200  # revalidate(tag=)
    assert status_of(two.get("/stock/shared/")).endswith("; stored")
    assert one.renders("/stock/shared/") == 2
    # The command reaches the same store, through ONDEMAND_CACHE_URL.
    env = {"FLASK_ONDEMAND_CACHE_URL": one.env["FLASK_ONDEMAND_CACHE_URL"]}
    result = flask(one.project, "ondemand", "revalidate", "--tag", "stock", app=CACHE_APP, env=env)
    assert result.stdout.strip() == "Purged 1 cached page."
    assert status_of(one.get("/stock/shared/")).endswith("; stored")


def test_one_render_across_two_servers(shared: tuple[CacheSite, CacheSite]) -> None:
    one, two = shared
    release = one.folder / "release-shared"
    path = f"/held/?until={release}"
    with ThreadPoolExecutor(20) as pool:
        replies = [pool.submit((one, two)[n % 2].get, path) for n in range(20)]
        one.wait_for(lambda: one.renders(path) == 1, "the first render")
        # Both servers' workers (they share the log) are handling it: 4 of them at once.
        one.wait_for(lambda: len(one.started(path)) == 4, "every worker")
        release.touch()
        answers = [reply.result() for reply in replies]
    assert [(a.status, a.text) for a in answers] == [(200, "Held v1")] * 20
    assert one.renders(path) == 1


def test_pages_answer_with_redis_stopped_mid_test(tmp_path: Path) -> None:
    with redis_server(tmp_path / "redis") as redis:
        port = int(redis.url.rsplit(":", 1)[1].split("/")[0])
        project, run, env = build_cache_site(tmp_path)
        env = {**env, "FLASK_ONDEMAND_CACHE_URL": redis.url}
        with serving(project, run, env) as site:
            path = "/prices/?t=stopped"
            site.get(path)
            assert status_of(site.get(path)).startswith("flask-ondemand; hit;")
            redis.process.terminate()
            redis.process.wait(15)
            for _ in range(5):
                reply = site.get(path)
                assert (reply.status, reply.text) == (200, "Prices v1")
                assert status_of(reply) == "flask-ondemand; fwd=bypass; detail=store-down"
            assert site.renders(path) == 6
            assert 1 <= site.server.log.count("the route cache's store") <= 2
            # A new, empty Redis on the same address: pages are stored in it, and hit, again.
            with redis_server(tmp_path / "redis-again", port=port):
                site.wait_for(
                    lambda: status_of(site.get(path)).startswith("flask-ondemand; hit;"),
                    "Redis to be used again",
                )
