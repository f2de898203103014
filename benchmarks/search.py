"""How fast is pose search, and what does the approximate index give up?

Measures, in one run and on the same machine, with the code `mcss index` / `mcss search`
use (:mod:`mcss.pose_index`):

* **exact search, 100k x 128**: FAISS's flat index against a NumPy brute force (one BLAS
  matrix product for the distances, ``argpartition`` for the top 10) on the same gallery
  and the same queries, interleaved, ``--repeats`` times; medians and their ratio;
* **IVF at 1M x 128**: build time (k-means training and adding), query time (median of 3)
  and recall@10 against the exact flat search (its time: median of 3), for ``--nlist``
  cells and each ``--nprobe``;
* **the limit of IVF**: recall@10 of the same IVF settings at 100k on isotropic random
  vectors (no structure for the cells to follow).

Embeddings are random unit vectors with a 16-d structure (a random linear map of a 16-d
Gaussian plus isotropic noise), as trained embeddings lie near a low-dimensional set;
queries are fresh draws from the same distribution, never gallery items. FAISS and NumPy
use every core (nothing sets the thread counts). Writes a JSON file and prints tables.

Usage::

    python benchmarks/search.py [--repeats 5] [--queries 1000] [--nlist 1024]
        [--nprobe 8 16 32 64] [--out benchmarks/results/search.json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path

import faiss
import numpy as np

from machine import cpu_model, load_average
from mcss.pose_index import IndexParams, build_faiss_index, normalise, search_index

DIM, LATENT, K = 128, 16, 10


def embeddings(n: int, rng: np.random.Generator, mixing: np.ndarray | None) -> np.ndarray:
    """``n`` unit vectors: structured (``mixing`` ``(LATENT, DIM)``) or isotropic (None)."""
    if mixing is None:
        return normalise(rng.standard_normal((n, DIM), dtype=np.float32))
    out = np.empty((n, DIM), dtype=np.float32)
    for lo in range(0, n, 100_000):  # in blocks: 1M x 128 temporaries would double memory
        m = min(100_000, n - lo)
        x = rng.standard_normal((m, LATENT), dtype=np.float32) @ mixing
        out[lo:lo + m] = normalise(x + 0.3 * rng.standard_normal((m, DIM), dtype=np.float32))
    return out


def numpy_top_k(gallery: np.ndarray, sq_norms: np.ndarray, queries: np.ndarray,
                chunk: int = 250) -> np.ndarray:
    """Exact top-``K`` rows by L2 distance, NumPy only: ``|x|^2 - 2 q.x`` (``|q|^2`` does
    not change the order), ``argpartition``, then a sort of the ``K`` kept."""
    found = []
    for lo in range(0, len(queries), chunk):
        d = sq_norms[None] - 2.0 * (queries[lo:lo + chunk] @ gallery.T)
        part = np.argpartition(d, K, axis=1)[:, :K]
        order = np.argsort(np.take_along_axis(d, part, axis=1), axis=1)
        found.append(np.take_along_axis(part, order, axis=1))
    return np.concatenate(found)


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean fraction of the true top-``K`` that ``found`` holds."""
    return float(np.mean([len(set(a) & set(b)) / K for a, b in zip(found, truth, strict=True)]))


def timed(fn) -> tuple[float, float, object]:
    """Wall seconds, CPU utilisation (process CPU time / wall) and result of one call."""
    start, cpu = time.perf_counter(), time.process_time()
    result = fn()
    wall = time.perf_counter() - start
    return wall, (time.process_time() - cpu) / wall, result


def exact_search(n: int, queries: int, repeats: int, rng: np.random.Generator,
                 mixing: np.ndarray) -> dict:
    gallery, query = embeddings(n, rng, mixing), embeddings(queries, rng, mixing)
    flat, _ = build_faiss_index(gallery, IndexParams("flat"))
    sq_norms = (gallery ** 2).sum(axis=1)
    numpy_top_k(gallery, sq_norms, query)  # warm-up of both: the first call is slow
    search_index(flat, query, K)
    rows: dict[str, list[float]] = {"faiss_s": [], "numpy_s": [], "faiss_util": [],
                                    "numpy_util": []}
    for _ in range(repeats):
        wall, util, (_, faiss_ids) = timed(lambda: search_index(flat, query, K))
        rows["faiss_s"].append(wall)
        rows["faiss_util"].append(util)
        wall, util, numpy_ids = timed(lambda: numpy_top_k(gallery, sq_norms, query))
        rows["numpy_s"].append(wall)
        rows["numpy_util"].append(util)
    faiss_med, numpy_med = statistics.median(rows["faiss_s"]), statistics.median(rows["numpy_s"])
    return {
        "gallery": n, "queries": queries, "dim": DIM, "k": K, "repeats": repeats,
        "faiss_flat_s_median": faiss_med, "numpy_s_median": numpy_med,
        "faiss_ms_per_query": 1000 * faiss_med / queries,
        "numpy_ms_per_query": 1000 * numpy_med / queries,
        "ratio_numpy_over_faiss": numpy_med / faiss_med,
        "agreement_top10": recall(faiss_ids, numpy_ids), **rows,
    }


def ivf_sweep(n: int, queries: int, nlist: int, nprobes: list[int], rng: np.random.Generator,
              mixing: np.ndarray) -> dict:
    gallery, query = embeddings(n, rng, mixing), embeddings(queries, rng, mixing)
    flat, _ = build_faiss_index(gallery, IndexParams("flat"))
    search_index(flat, query[:100], K)
    times = [timed(lambda: search_index(flat, query, K)) for _ in range(3)]
    flat_s, flat_util = statistics.median(t[0] for t in times), statistics.median(
        t[1] for t in times)
    truth = times[0][2][1]
    build_s, build_util, (ivf, _) = timed(
        lambda: build_faiss_index(gallery, IndexParams("ivf", nlist=nlist, nprobe=1)))
    sweep = []
    for nprobe in nprobes:
        ivf.nprobe = nprobe
        search_index(ivf, query[:100], K)
        times = [timed(lambda: search_index(ivf, query, K)) for _ in range(3)]
        seconds = statistics.median(t[0] for t in times)
        sweep.append({"nprobe": nprobe, "fraction_scanned": nprobe / nlist,
                      "ms_per_query": 1000 * seconds / queries,
                      "cpu_utilisation": statistics.median(t[1] for t in times),
                      "speedup_over_flat": flat_s / seconds,
                      "recall_at_10": recall(times[0][2][1], truth)})
        print(f"IVF {n} x {DIM}, nlist {nlist}, nprobe {nprobe}: "
              f"{sweep[-1]['ms_per_query']:.3f} ms/query, recall@10 "
              f"{sweep[-1]['recall_at_10']:.3f}", file=sys.stderr, flush=True)
    return {"gallery": n, "queries": queries, "dim": DIM, "k": K, "nlist": nlist,
            "build_s": build_s, "build_cpu_utilisation": build_util,
            "flat_ms_per_query": 1000 * flat_s / queries, "flat_cpu_utilisation": flat_util,
            "sweep": sweep}


def isotropic_limit(n: int, queries: int, nlist: int, nprobe: int,
                    rng: np.random.Generator) -> dict:
    gallery, query = embeddings(n, rng, None), embeddings(queries, rng, None)
    flat, _ = build_faiss_index(gallery, IndexParams("flat"))
    ivf, _ = build_faiss_index(gallery, IndexParams("ivf", nlist=nlist, nprobe=nprobe))
    return {"gallery": n, "queries": queries, "nlist": nlist, "nprobe": nprobe,
            "recall_at_10": recall(search_index(ivf, query, K)[1],
                                   search_index(flat, query, K)[1])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--small", type=int, default=100_000, help="gallery of the exact test")
    parser.add_argument("--large", type=int, default=1_000_000, help="gallery of the IVF test")
    parser.add_argument("--nlist", type=int, default=1024)
    parser.add_argument("--nprobe", type=int, nargs="+", default=[8, 16, 32, 64])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/search.json"))
    args = parser.parse_args(argv)
    if args.repeats < 5:
        parser.error("--repeats must be at least 5 (medians of fewer mean little)")

    start, load_before = time.perf_counter(), load_average()
    rng = np.random.default_rng(0)
    mixing = rng.standard_normal((LATENT, DIM), dtype=np.float32)
    exact = exact_search(args.small, args.queries, args.repeats, rng, mixing)
    print(f"exact {args.small} x {DIM}: FAISS {exact['faiss_ms_per_query']:.3f} ms/query, "
          f"NumPy {exact['numpy_ms_per_query']:.3f} ms/query, ratio "
          f"{exact['ratio_numpy_over_faiss']:.2f}", file=sys.stderr, flush=True)
    ivf = ivf_sweep(args.large, args.queries, args.nlist, args.nprobe, rng, mixing)
    limit = isotropic_limit(args.small, args.queries, args.nlist, max(args.nprobe), rng)
    utilisation = [exact["faiss_util"][-1], ivf["flat_cpu_utilisation"],
                   *(row["cpu_utilisation"] for row in ivf["sweep"])]
    if min(utilisation) < 0.6 * faiss.omp_get_max_threads():
        print(f"warning: searches used as little as {min(utilisation):.2f} of "
              f"{faiss.omp_get_max_threads()} threads' CPU time: the cores were shared with "
              "other work, the timings are too slow (see benchmarks/README.md)", file=sys.stderr)
    result = {
        "benchmark": "search",
        "data": f"random unit {DIM}-d vectors with a {LATENT}-d structure (random linear map "
                "of a Gaussian + isotropic noise 0.3); queries are fresh draws",
        "exact": exact,
        "ivf": ivf,
        "isotropic_ivf": limit,
        "seconds_total": time.perf_counter() - start,
        "machine": {
            "cpu_model": cpu_model(),
            "os_cpu_count": os.cpu_count(),
            "faiss_threads": faiss.omp_get_max_threads(),
            "faiss_version": faiss.__version__,
            "numpy_version": np.__version__,
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average_before": load_before,
            "load_average_after": load_average(),
        },
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": shlex.join(["python", *sys.argv]),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"\nExact top-{K}, {args.small} x {DIM}, {args.queries} queries, median of "
          f"{args.repeats} ({cpu_model()}, {os.cpu_count()} CPUs)\n")
    print("| | ms/query | ratio |\n|---|---:|---:|")
    print(f"| FAISS flat | {exact['faiss_ms_per_query']:.3f} | 1 |")
    print(f"| NumPy brute force | {exact['numpy_ms_per_query']:.3f} | "
          f"{exact['ratio_numpy_over_faiss']:.2f} |")
    print(f"\nIVF, {args.large} x {DIM}, nlist {args.nlist} (build {ivf['build_s']:.1f} s; "
          f"flat {ivf['flat_ms_per_query']:.2f} ms/query)\n")
    print("| nprobe | ms/query | speed-up over flat | recall@10 |\n|---:|---:|---:|---:|")
    for row in ivf["sweep"]:
        print(f"| {row['nprobe']} | {row['ms_per_query']:.3f} | "
              f"{row['speedup_over_flat']:.1f}x | {row['recall_at_10']:.3f} |")
    print(f"\nisotropic vectors, {args.small}: recall@10 {limit['recall_at_10']:.3f} at "
          f"nprobe {limit['nprobe']}\nwritten {args.out} in {result['seconds_total']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
