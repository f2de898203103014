"""`mcss index` / `mcss search`: exact search finds the item itself, approximate indexes keep
recall, the index refuses another network, files are pickle-free."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inference_helpers import cached_checkpoint
from mcss.cli import main
from mcss.data.format import Dataset
from mcss.pose_index import (
    IndexParams,
    build_faiss_index,
    build_pose_index,
    load_pose_index,
    normalise,
    save_pose_index,
    search_index,
)
from mcss.predict import load_model

QUERY_ROW = 37


def run_cli(*args: object) -> int:
    with pytest.raises(SystemExit) as stop:
        main([str(a) for a in args])
    return stop.value.code


@pytest.fixture(scope="module")
def flat_index(tmp_path_factory: pytest.TempPathFactory, tiny_checkpoint: Path,  # noqa: F811
               tiny_dataset: Path) -> Path:
    out = tmp_path_factory.mktemp("index") / "flat"
    assert run_cli("index", tiny_checkpoint.parent.parent, "--data", tiny_dataset,
                   "--out", out) == 0
    return out


@pytest.fixture(scope="module")
def query_png(tmp_path_factory: pytest.TempPathFactory, tiny_dataset: Path) -> Path:
    path = tmp_path_factory.mktemp("query") / "query.png"
    Image.fromarray(np.asarray(Dataset(tiny_dataset).images[QUERY_ROW])).save(path)
    return path


def structured_embeddings(n: int, rng: np.random.Generator, mixing: np.ndarray) -> np.ndarray:
    """Random unit 128-d vectors with a 16-d structure (a random linear map of a 16-d
    Gaussian plus isotropic noise): trained embeddings lie near a low-dimensional set, while
    isotropic random vectors have no neighbourhoods for IVF or HNSW to find."""
    x = rng.standard_normal((n, mixing.shape[0]), dtype=np.float32) @ mixing
    return normalise(x + 0.3 * rng.standard_normal(x.shape, dtype=np.float32))


def recall_at_10(params: IndexParams, n: int, queries: int = 200) -> float:
    rng = np.random.default_rng(0)
    mixing = rng.standard_normal((16, 128), dtype=np.float32)
    gallery = structured_embeddings(n, rng, mixing)
    query = structured_embeddings(queries, rng, mixing)
    exact, _ = build_faiss_index(gallery, IndexParams("flat"))
    approximate, _ = build_faiss_index(gallery, params)
    _, truth = search_index(exact, query, 10)
    _, found = search_index(approximate, query, 10)
    return float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(truth, found, strict=True)]))


def test_search_with_a_gallery_crop_finds_it_first(
    flat_index: Path, query_png: Path, tmp_path: Path, capsys
) -> None:
    montage, hits = tmp_path / "montage.png", tmp_path / "hits.json"
    assert run_cli("search", flat_index, "--image", query_png, "--k", "5", "--out", montage,
                   "--json", hits) == 0
    table = capsys.readouterr().out
    assert "distance" in table and "PA-MPJPE" in table
    result = json.loads(hits.read_text())
    first = result["hits"][0]
    assert first["row"] == QUERY_ROW and first["distance"] < 1e-3
    assert len(result["hits"]) == 5 and list(first["pose_camera"])[0] == "pelvis"
    assert [h["distance"] for h in result["hits"]] == sorted(h["distance"] for h in result["hits"])
    assert Image.open(montage).width == 6 * (128 + 4) + 4


def test_index_folder_is_pickle_free_and_records_its_sources(
    flat_index: Path, tiny_dataset: Path, tiny_checkpoint: Path  # noqa: F811
) -> None:
    assert sorted(p.name for p in flat_index.iterdir()) == ["index.faiss", "meta.json",
                                                            "rows.npz"]
    meta = json.loads((flat_index / "meta.json").read_text())
    assert meta["checkpoint"]["path"] == str(tiny_checkpoint.resolve())
    assert len(meta["checkpoint"]["sha256"]) == 64
    assert meta["dataset"]["path"] == str(tiny_dataset.resolve())
    ds = Dataset(tiny_dataset)
    with np.load(flat_index / "rows.npz", allow_pickle=False) as rows:
        assert len(rows["row"]) == len(ds) == meta["count"]
        assert rows["camera"][0] == ds.meta["cameras"][ds.camera_id[0]]["name"]
        labelled = rows["labelled"]
        assert labelled.any() and np.isfinite(rows["pose_camera"][labelled]).all()
        assert np.isnan(rows["pose_camera"][~labelled]).all()


def test_search_refuses_another_checkpoint(
    flat_index: Path, query_png: Path, tmp_path_factory: pytest.TempPathFactory,
    tiny_dataset: Path, capsys
) -> None:
    other = cached_checkpoint(tmp_path_factory, tiny_dataset, seed=1)
    assert run_cli("search", flat_index, "--image", query_png, "--checkpoint", other) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not the one that built index" in err[0] and str(other) in err[0]


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_approximate_indexes_round_trip(
    kind: str, tiny_checkpoint: Path, tiny_dataset: Path, tmp_path: Path  # noqa: F811
) -> None:
    built = build_pose_index(load_model(tiny_checkpoint), tiny_dataset, IndexParams(kind),
                             split="test")
    path = save_pose_index(built, tmp_path / kind)
    loaded = load_pose_index(path)
    assert loaded.meta["params"] == built.meta["params"] and len(loaded) == len(built)
    assert set(loaded.rows["subject"]) == {"S9", "S11"}
    queries = np.random.default_rng(0).standard_normal((4, loaded.meta["dim"]))
    np.testing.assert_array_equal(built.search(queries, 5)[1], loaded.search(queries, 5)[1])


def test_ivf_recall_at_10_on_100k_embeddings() -> None:
    """nlist 256 cells, nprobe 32 searched (1/8 of the gallery per query)."""
    assert recall_at_10(IndexParams("ivf", nlist=256, nprobe=32), 100_000) >= 0.95


def test_hnsw_recall_at_10_on_20k_embeddings() -> None:
    """M 32 links per vector, efConstruction 40, efSearch 64."""
    assert recall_at_10(IndexParams("hnsw", hnsw_m=32, ef_search=64), 20_000) >= 0.95


@pytest.mark.parametrize("case", ["no index", "bad box", "box outside", "no image"])
def test_search_errors_give_one_line(
    case: str, flat_index: Path, query_png: Path, tmp_path: Path, capsys
) -> None:
    args: list[object] = ["search", flat_index, "--image", query_png]
    named = str(query_png)
    if case == "no index":
        args[1] = named = str(tmp_path / "missing-index")
    elif case == "bad box":
        args += ["--box", "1,2,3"]
        named = "--box"
    elif case == "box outside":
        args += ["--box", "100,100,10,10"]
    else:
        args[3] = named = str(tmp_path / "missing.png")
    assert run_cli(*args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("mcss: error: ") and named in err[0], (case, err)
