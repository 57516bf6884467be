#!/usr/bin/python3
"""Test vectors of package kmeans, from numpy and scikit-learn themselves.

Run with Debian's Python (python3-numpy, python3-sklearn), from this folder:

    /usr/bin/python3 gen_vectors.py

Writes vectors.json:

  mt19937   np.random.RandomState(111): the key after seeding (first words),
            raw 32-bit outputs (randint(0, 2**32, dtype=uint64) draws them
            unchanged), then on fresh generators randint(n) sequences,
            random_sample() doubles, and choice(n, p=float32 unit weights / n)
            with the generator position (get_state()[2]) after each.
  fits      a sequence of KMeans(n_clusters=20, n_init="auto").fit_predict
            calls on float32 data after np.random.seed(111), as AdaCLIP's
            HSF makes them: the data, the k-means++ seeds (recorded by
            wrapping sklearn.cluster._kmeans._kmeans_plusplus, which calls
            the original), the labels, n_iter_ and the generator position
            before and after each fit.
"""
import json
import os

import numpy as np
import sklearn
import sklearn.cluster._kmeans as skk
from sklearn.cluster import KMeans

HERE = os.path.dirname(os.path.abspath(__file__))


def mt_vectors():
    out = {}
    rs = np.random.RandomState(111)
    out["key_head"] = [int(v) for v in rs.get_state()[1][:4]]
    out["uint32"] = [int(v) for v in rs.randint(0, 2**32, size=8, dtype=np.uint64)]
    cases = []
    for n in (100, 36, 7, 1):
        rs = np.random.RandomState(111)
        vals = [int(rs.randint(n)) for _ in range(6)]
        cases.append({"n": n, "randint": vals, "pos": int(rs.get_state()[2])})
    out["randint"] = cases
    rs = np.random.RandomState(111)
    out["random_sample"] = [float(rs.random_sample()) for _ in range(5)]
    out["uniform4"] = [float(v) for v in rs.uniform(size=4)]
    ch = []
    for n in (100, 36):
        rs = np.random.RandomState(111)
        w = np.ones(n, dtype=np.float32)
        vals = [int(rs.choice(n, p=w / w.sum())) for _ in range(6)]
        ch.append({"n": n, "choice": vals, "pos": int(rs.get_state()[2])})
    out["choice"] = ch
    return out


def fit_vectors():
    records = []
    orig = skk._kmeans_plusplus

    def kpp(*a, **k):
        centers, indices = orig(*a, **k)
        records.append([int(i) for i in indices])
        return centers, indices
    skk._kmeans_plusplus = kpp
    np.random.seed(111)
    data_rs = np.random.RandomState(5)
    km = KMeans(n_clusters=20, n_init="auto")
    fits = []
    for n, dim, spread in ((100, 16, 0.6), (100, 24, 1.0), (36, 8, 0.4), (100, 16, 2.0)):
        centers = data_rs.randn(12, dim)
        x = (centers[data_rs.randint(12, size=n)] + spread * data_rs.randn(n, dim)).astype(np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)  # unit rows, as HSF's tokens
        before = int(np.random.get_state()[2])
        labels = km.fit_predict(x)
        fits.append({"n": n, "dim": dim, "x": [float(np.format_float_positional(v, unique=True)) for v in x.ravel()],
                     "init": records[-1], "labels": [int(v) for v in labels], "n_iter": int(km.n_iter_),
                     "pos_before": before, "pos_after": int(np.random.get_state()[2])})
    return fits


def main():
    out = {"numpy": np.__version__, "sklearn": sklearn.__version__,
           "mt19937": mt_vectors(), "fits": fit_vectors()}
    with open(os.path.join(HERE, "vectors.json"), "w") as f:
        json.dump(out, f)
        f.write("\n")


if __name__ == "__main__":
    main()
