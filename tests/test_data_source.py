"""Finding the data: user folders, the cache, verified downloads from a local server, and the real files."""

from __future__ import annotations

import functools
import hashlib
import http.server
import socket
import threading

import pytest

from emoscope.core.errors import UserError
from emoscope.data import (
    BASE_URL,
    OFFICIAL_FILES,
    ORIGINAL_LABELS,
    check_url,
    download_goemotions,
    load_goemotions,
    read_examples,
    resolve_data_dir,
    verify_data_dir,
)

TINY = {
    "train.tsv": b"I love it\t18\ta1\nSo sad\t25\ta2\n",
    "dev.tsv": b"Wow\t26\tb1\n",
    "test.tsv": b"Thanks!\t15,0\tc1\n",
}
TINY_SUMS = {name: (len(data), hashlib.sha256(data).hexdigest()) for name, data in TINY.items()}
ALL_NAMES = "train.tsv, dev.tsv, test.tsv"


class _Handler(http.server.SimpleHTTPRequestHandler):
    requests: list[str] = []

    def do_GET(self):
        _Handler.requests.append(self.path)
        if self.path.startswith("/redirect/"):
            self.send_response(302)
            self.send_header("Location", "http://example.invalid/elsewhere/" + self.path.rsplit("/", 1)[1])
            self.end_headers()
            return
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A local mirror with a good set of files, a truncated one, a corrupted one and an oversized one."""
    root = tmp_path_factory.mktemp("mirror")
    variants = {
        "good": {},
        "truncated": {"dev.tsv": TINY["dev.tsv"][:5]},
        "corrupted": {"test.tsv": TINY["test.tsv"].replace(b"Thanks", b"THANKS")},
        "oversized": {"train.tsv": TINY["train.tsv"] * 3},
    }
    for variant, changes in variants.items():
        (root / variant).mkdir()
        for name, data in {**TINY, **changes}.items():
            (root / variant / name).write_bytes(data)
    yield from _serve(root)


def _serve(root):
    """Serve `root` on 127.0.0.1 at a free port, in a thread; yields the base URL."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Handler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def official_mirror(goemotions_dir, tmp_path_factory):
    """Copies of the real official files: `official/` as published, `corrupted/` with one byte of test.tsv
    changed (same size, so only the sha256 can tell)."""
    root = tmp_path_factory.mktemp("official-mirror")
    for variant in ("official", "corrupted"):
        (root / variant).mkdir()
        for name in OFFICIAL_FILES:
            (root / variant / name).write_bytes((goemotions_dir / name).read_bytes())
    (root / "corrupted" / "test.tsv").write_bytes(_one_byte_changed((goemotions_dir / "test.tsv").read_bytes()))
    yield from _serve(root)


def _one_byte_changed(data: bytes) -> bytes:
    changed = bytearray(data)
    changed[100] ^= 1
    return bytes(changed)


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    """A fresh, empty cache; no data dir from the environment; downloading allowed."""
    monkeypatch.setenv("EMOSCOPE_CACHE_DIR", str(tmp_path / "cache"))
    for name in ("EMOSCOPE_DATA_DIR", "EMOSCOPE_DATA_URL", "HF_HUB_OFFLINE", "EMOSCOPE_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    _Handler.requests.clear()
    return tmp_path / "cache" / "goemotions"


def _files(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_a_good_download_lands_verified_and_is_reused(server, cache):
    folder = resolve_data_dir(base_url=f"{server}/good", expected=TINY_SUMS)
    assert folder == cache and _files(cache) == sorted(TINY)  # no temporary file left beside them
    assert all((cache / n).read_bytes() == data for n, data in TINY.items())
    assert sorted(_Handler.requests) == sorted(f"/good/{n}" for n in TINY)
    assert resolve_data_dir(base_url=f"{server}/good", expected=TINY_SUMS) == cache
    assert len(_Handler.requests) == 3  # nothing fetched again
    assert verify_data_dir(cache, TINY_SUMS) == dict.fromkeys(TINY, "ok")
    assert [e.labels for e in read_examples(cache / "test.tsv")] == [(0, 15)]


def test_a_cached_file_of_the_wrong_size_is_fetched_again(server, cache):
    cache.mkdir(parents=True)
    (cache / "dev.tsv").write_bytes(b"half")
    for name in ("train.tsv", "test.tsv"):
        (cache / name).write_bytes(TINY[name])
    resolve_data_dir(base_url=f"{server}/good", expected=TINY_SUMS)
    assert _Handler.requests == ["/good/dev.tsv"] and (cache / "dev.tsv").read_bytes() == TINY["dev.tsv"]


def test_a_cached_file_of_the_right_size_but_other_bytes_is_fetched_again(server, cache):
    cache.mkdir(parents=True)
    for name, data in TINY.items():
        (cache / name).write_bytes(data)
    (cache / "dev.tsv").write_bytes(b"Wow\t26\tb2\n")  # same size as the good file, other content
    resolve_data_dir(base_url=f"{server}/good", expected=TINY_SUMS)
    assert _Handler.requests == ["/good/dev.tsv"] and (cache / "dev.tsv").read_bytes() == TINY["dev.tsv"]


def test_the_real_files_download_verified_into_an_empty_cache_and_load(official_mirror, cache, monkeypatch):
    """What a user without data gets: `load_goemotions()` finds nothing cached, downloads the six official
    files (checked against OFFICIAL_FILES' sizes and sha256), keeps them in the cache and reads them."""
    monkeypatch.setenv("EMOSCOPE_DATA_URL", f"{official_mirror}/official/")
    data = load_goemotions()
    assert (len(data.train), len(data.dev), len(data.test)) == (43410, 5426, 5427) and data.skipped == []
    assert sorted(_Handler.requests) == sorted(f"/official/{name}" for name in OFFICIAL_FILES)
    assert _files(cache) == sorted(OFFICIAL_FILES)  # no temporary file left beside them
    assert verify_data_dir(cache) == dict.fromkeys(OFFICIAL_FILES, "ok")
    assert load_goemotions(taxonomy="ekman").taxonomy.name == "ekman"
    assert len(_Handler.requests) == len(OFFICIAL_FILES)  # the cached copy is used: nothing fetched again


def test_a_corrupted_real_file_is_rejected_and_nothing_is_saved(official_mirror, goemotions_dir, cache):
    url = f"{official_mirror}/corrupted/"
    with pytest.raises(UserError) as e:
        resolve_data_dir(base_url=url)
    served = hashlib.sha256(_one_byte_changed((goemotions_dir / "test.tsv").read_bytes())).hexdigest()
    assert str(e.value) == (
        f"rejected test.tsv from {url}test.tsv: sha256 {served} is not the official "
        f"{OFFICIAL_FILES['test.tsv'][1]} (corrupted or tampered); nothing was saved in {cache}"
    )
    assert _files(cache) == []  # not even train.tsv and dev.tsv, which verified


@pytest.mark.parametrize(
    ("variant", "problem"),
    [
        (
            "truncated",
            "rejected dev.tsv from {url}dev.tsv: got 5 bytes, expected {dev} (truncated or not the "
            "official file); nothing was saved in {cache}",
        ),
        (
            "corrupted",
            "rejected test.tsv from {url}test.tsv: sha256 {bad} is not the official {good} (corrupted "
            "or tampered); nothing was saved in {cache}",
        ),
        (
            "oversized",
            "rejected train.tsv from {url}train.tsv: got more than {train} bytes, expected {train} "
            "(truncated or not the official file); nothing was saved in {cache}",
        ),
    ],
)
def test_a_bad_download_leaves_nothing_in_the_cache(server, cache, variant, problem):
    url = f"{server}/{variant}/"
    with pytest.raises(UserError) as e:
        resolve_data_dir(base_url=url, expected=TINY_SUMS)
    bad = hashlib.sha256(TINY["test.tsv"].replace(b"Thanks", b"THANKS")).hexdigest()
    assert str(e.value) == problem.format(
        url=url,
        cache=cache,
        bad=bad,
        good=TINY_SUMS["test.tsv"][1],
        dev=len(TINY["dev.tsv"]),
        train=len(TINY["train.tsv"]),
    )
    assert _files(cache) == []  # all or nothing: not even the files that verified


def test_a_network_failure_says_which_files_to_put_where(server, cache):
    with pytest.raises(UserError) as e:
        resolve_data_dir(base_url=f"{server}/missing/", expected=TINY_SUMS)
    assert str(e.value) == (
        f"could not download train.tsv from {server}/missing/ (HTTP Error 404: File "
        f"not found): put {ALL_NAMES} (from {server}/missing/) in {cache}, or point "
        "--data-dir / EMOSCOPE_DATA_DIR at a folder that has them"
    )
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(UserError) as e:
        resolve_data_dir(base_url=f"http://127.0.0.1:{port}/", expected=TINY_SUMS)
    assert "Connection refused" in str(e.value)
    assert str(e.value).endswith(
        f"put {ALL_NAMES} (from http://127.0.0.1:{port}/) in {cache}, or point "
        "--data-dir / EMOSCOPE_DATA_DIR at a folder that has them"
    )
    assert _files(cache) == []


@pytest.mark.parametrize(("env", "value"), [("HF_HUB_OFFLINE", "1"), ("EMOSCOPE_OFFLINE", "true")])
def test_offline_without_a_local_copy_is_one_clear_error(server, cache, monkeypatch, env, value):
    monkeypatch.setenv(env, value)
    monkeypatch.setenv("EMOSCOPE_DATA_URL", f"{server}/good")
    with pytest.raises(UserError) as e:
        resolve_data_dir(expected=TINY_SUMS)
    assert str(e.value) == (
        f"GoEmotions data not found and {env}=1 forbids downloading: put {ALL_NAMES} "
        f"(from {server}/good/) in {cache}, or point --data-dir / EMOSCOPE_DATA_DIR at a "
        "folder that has them"
    )
    assert _Handler.requests == []


def test_the_official_file_list_by_default(cache):
    with pytest.raises(UserError) as e:
        resolve_data_dir(download=False)
    assert str(e.value) == (
        "GoEmotions data not found and downloading is off: put train.tsv, dev.tsv, "
        "test.tsv, emotions.txt, ekman_mapping.json, sentiment_dict.json "
        f"(from {BASE_URL}) in {cache}, or point --data-dir / EMOSCOPE_DATA_DIR at a "
        "folder that has them"
    )


def test_the_base_url_comes_from_the_environment(server, cache, monkeypatch):
    monkeypatch.setenv("EMOSCOPE_DATA_URL", f"{server}/good/")
    assert resolve_data_dir(expected=TINY_SUMS) == cache and _files(cache) == sorted(TINY)


def test_only_https_or_loopback_http(server, cache):
    for url in ("http://example.com/data/", "ftp://127.0.0.1/data/", "file:///etc/", "https:///nohost/"):
        with pytest.raises(UserError) as e:
            download_goemotions(cache, base_url=url, expected=TINY_SUMS)
        assert str(e.value) == (
            f"refusing to download from {url}: only https URLs are allowed (plain http "
            "only to 127.0.0.1, localhost, ::1)"
        )
    for url in ("https://example.com/x", "http://127.0.0.1:8000/x", "http://localhost/x", "http://[::1]:80/x"):
        check_url(url)
    with pytest.raises(UserError, match=r"refusing to download from http://example\.invalid/elsewhere/"):
        download_goemotions(cache, base_url=f"{server}/redirect/", expected=TINY_SUMS)
    assert _files(cache) == []


def test_an_explicit_download_into_a_chosen_folder(server, tmp_path, cache):
    folder = tmp_path / "mine"
    assert download_goemotions(folder, base_url=f"{server}/good", expected=TINY_SUMS) == folder
    assert _files(folder) == sorted(TINY)
    assert resolve_data_dir(folder) == folder


def test_user_folders_are_used_as_they_are_and_never_downloaded_into(server, tmp_path, cache, monkeypatch):
    folder = tmp_path / "partial"
    folder.mkdir()
    (folder / "train.tsv").write_bytes(TINY["train.tsv"])
    with pytest.raises(UserError) as e:
        resolve_data_dir(folder, base_url=f"{server}/good", expected=TINY_SUMS)
    assert str(e.value) == (f"data dir {folder} has no dev.tsv, test.tsv: it needs {ALL_NAMES} (from {BASE_URL})")
    monkeypatch.setenv("EMOSCOPE_DATA_DIR", str(tmp_path / "absent"))
    with pytest.raises(UserError) as e:
        resolve_data_dir(base_url=f"{server}/good", expected=TINY_SUMS)
    assert str(e.value) == f"EMOSCOPE_DATA_DIR {tmp_path / 'absent'} does not exist"
    assert _Handler.requests == [] and _files(folder) == ["train.tsv"]


def test_verify_reports_each_file(tmp_path):
    for name, data in TINY.items():
        (tmp_path / name).write_bytes(data)
    (tmp_path / "dev.tsv").write_bytes(b"Wow\t26\tb2\n")  # same size, other bytes
    (tmp_path / "test.tsv").write_bytes(b"short")
    expected = {**TINY_SUMS, "emotions.txt": OFFICIAL_FILES["emotions.txt"]}
    assert verify_data_dir(tmp_path, expected) == {
        "train.tsv": "ok",
        "dev.tsv": "sha256 differs from the official file",
        "test.tsv": f"size 5, official {len(TINY['test.tsv'])}",
        "emotions.txt": "missing (the packaged copy is used)",
    }


def test_the_real_files(goemotions_dir, monkeypatch):
    monkeypatch.delenv("EMOSCOPE_DATA_DIR", raising=False)
    assert verify_data_dir(goemotions_dir) == dict.fromkeys(OFFICIAL_FILES, "ok")
    train = read_examples(goemotions_dir / "train.tsv")
    assert len(train) == 43410 and train.skipped == []
    assert {i for e in train for i in e.labels} == set(range(len(ORIGINAL_LABELS)))

    data = load_goemotions(goemotions_dir, taxonomy="sentiment")
    assert (len(data.train), len(data.dev), len(data.test)) == (43410, 5426, 5427) and data.skipped == []
    assert data.taxonomy.labels == ("positive", "negative", "ambiguous", "neutral")
    assert {i for e in data.train for i in e.labels} == {0, 1, 2, 3}
    assert all(e.labels == tuple(sorted(set(e.labels))) and e.labels for e in data.train)
    assert [e.id for e in data.train[:3]] == [e.id for e in train[:3]]
    grief = ORIGINAL_LABELS.index("grief")
    some_grief = next(i for i, e in enumerate(train) if e.labels == (grief,))
    assert data.train[some_grief].labels == (1,)  # grief -> negative
