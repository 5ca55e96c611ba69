"""The no-LLM clustering core: embeddings -> k clusters -> outliers -> merged near-duplicates.

Method (deterministic under ``seed``, memory linear in the number of items):

1. spectral clustering of the cosine-weighted k-nearest-neighbour graph (8-15 neighbours, growing with the
   items per cluster: ``auto_neighbors``) of up to ``FIT_MAX`` items (a seeded sample): the first k
   eigenvectors of the normalised Laplacian, rows normalised, k-means with ``N_INIT`` restarts. It follows
   the shape of the data better than k-means on the raw embeddings (eval/results/taxonomy.md: Banking77/MiniLM NMI 0.81 vs 0.76, AG News 0.63 vs 0.60);
2. the other items take the similarity-weighted vote of their nearest fitted items, so they
   follow the graph's clusters (nearest centroid cut them with straight boundaries: Banking77 fitted on a
   3,000-text sample, NMI 0.786 -> 0.791); memory stays linear (1M items x 384 floats = 1.5 GB);
3. (``method="kmeans"``: k-means over ~8k micro-clusters agglomerated with Ward linkage instead of 1.)
4. merge clusters whose centroids are near-duplicates (cosine above ``merge_threshold``);
5. clusters under ``min_size`` items are dissolved; items far below their cluster's typical similarity
   (robust z-score) are ``other``, at most ``OTHER_MAX`` of a cluster.

``k`` is ``max_labels``, capped so that every label can have ``min_size`` items; near-duplicate merging and
dissolving tiny clusters can only lower it. (A graph-cut criterion to pick a smaller k was tried: on
over-split corpora the pieces of one topic are no more connected than distinct topics, so it was left out.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Items whose similarity to their centroid is this many robust standard deviations below the cluster's
#: median are left as ``other``. 3.5 left ~1.8% of Banking77 ``other``, half of them in their cluster's
#: majority intent, and cost NMI 0.003-0.009 at every corpus size; at 5 ~0.5% are left
#: (eval/results/taxonomy-scale.md).
OUTLIER_Z = 5.0
#: At most this share of a cluster is left as ``other`` (its least similar items).
OTHER_MAX = 0.05
#: Spectral clustering is fitted on at most this many items (a seeded sample); the rest are assigned.
FIT_MAX = 20_000
#: Most neighbours per item in the k-NN graph. Measured on Banking77 (MiniLM, 10,003 texts): 10 -> NMI 0.807,
#: 15 -> 0.814, 20 -> 0.810, 25 -> 0.804, 50 -> 0.797; AG News: 15 -> 0.634, 25 -> 0.616 (k-means 0.601).
N_NEIGHBORS = 15
#: Fewest neighbours: with few items per cluster, 15 neighbours reach past a small cluster's edge and blur its
#: cut (Banking77 train, first 3,000 texts = 39 per intent: 15 -> NMI 0.771, 8 -> 0.787, k-means 0.782).
MIN_NEIGHBORS = 8


def auto_neighbors(n: int, k: int) -> int:
    """Graph neighbours for ``n`` items in ``k`` clusters: ``1.3 * sqrt(n / k)`` clipped to
    [``MIN_NEIGHBORS``, ``N_NEIGHBORS``], so the neighbourhood grows with the typical cluster (8 at 39 items
    per cluster, 15 from ~130 up: eval/results/taxonomy-scale.md)."""
    return int(np.clip(round(1.3 * np.sqrt(n / max(k, 1))), MIN_NEIGHBORS, N_NEIGHBORS))
#: k-means restarts on the spectral embedding (the lowest-inertia run is kept; cheap next to the eigensolver).
N_INIT = 30


@dataclass
class Clustering:
    labels: np.ndarray  # (n,) int cluster per item, -1 = other
    scores: np.ndarray  # (n,) cosine similarity to the assigned centroid
    centroids: np.ndarray  # (k, dim) L2-normalised
    merged: int = 0  # clusters merged as near-duplicates


def _normalize(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(n, 1e-12)).astype(np.float32)


def nearest(x: np.ndarray, centroids: np.ndarray, chunk: int = 65536) -> tuple[np.ndarray, np.ndarray]:
    """Index of the most similar centroid per row and that cosine (rows of x are normalised)."""
    lab = np.empty(len(x), dtype=np.int64)
    sc = np.empty(len(x), dtype=np.float32)
    for b in range(0, len(x), chunk):
        s = x[b : b + chunk] @ centroids.T
        lab[b : b + chunk] = s.argmax(1)
        sc[b : b + chunk] = s[np.arange(len(s)), lab[b : b + chunk]]
    return lab, sc


def _kmeans(x: np.ndarray, k: int, seed: int, weights: np.ndarray | None = None, init=None):
    from sklearn.cluster import KMeans, MiniBatchKMeans

    if init is not None:
        km = KMeans(k, init=init, n_init=1, max_iter=20, random_state=seed)
    elif len(x) > 50_000:
        km = MiniBatchKMeans(k, batch_size=4096, n_init=3, max_iter=50, random_state=seed, reassignment_ratio=0.001)
    else:
        km = KMeans(k, n_init=2 if len(x) > 20_000 else 4, max_iter=100, random_state=seed)
    km.fit(x, sample_weight=weights)
    return km


def _ward(points: np.ndarray, weights: np.ndarray, k: int) -> np.ndarray:
    """Ward agglomeration of weighted points (centroids of micro-clusters) into k groups."""
    from scipy.cluster.hierarchy import fcluster, linkage

    if len(points) <= k:
        return np.arange(len(points))
    # Weighted Ward: repeat nothing; scale each centroid's contribution by sqrt(size) is not Ward. Instead run
    # exact Ward on the points with their sizes via the Lance-Williams update (scipy has no weights), so we
    # implement the O(m^2) greedy merge directly: merge cost = w_a w_b / (w_a + w_b) * |c_a - c_b|^2.
    if np.all(weights == weights[0]):
        z = linkage(points.astype(np.float64), method="ward")
        return fcluster(z, k, criterion="maxclust") - 1
    return _weighted_ward(points.astype(np.float64), weights.astype(np.float64), k)


def _weighted_ward(c: np.ndarray, w: np.ndarray, k: int) -> np.ndarray:
    m = len(c)
    group = np.arange(m)
    active = np.ones(m, dtype=bool)
    sq = (c * c).sum(1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * c @ c.T, 0)
    cost = (w[:, None] * w[None, :]) / (w[:, None] + w[None, :]) * d2
    np.fill_diagonal(cost, np.inf)
    for _ in range(m - k):
        flat = int(np.argmin(cost))
        a, b = divmod(flat, m)
        if a > b:
            a, b = b, a
        wa, wb = w[a], w[b]
        c[a] = (wa * c[a] + wb * c[b]) / (wa + wb)
        w[a] = wa + wb
        active[b] = False
        group[group == b] = a
        cost[b, :] = np.inf
        cost[:, b] = np.inf
        d = ((c - c[a]) ** 2).sum(1)
        row = (w * w[a]) / (w + w[a]) * d
        row[~active] = np.inf
        row[a] = np.inf
        cost[a, :] = row
        cost[:, a] = row
    _, out = np.unique(group, return_inverse=True)
    return out


def merge_near_duplicates(centroids: np.ndarray, sizes: np.ndarray, threshold: float) -> np.ndarray:
    """Map old cluster -> new cluster, merging pairs whose centroid cosine exceeds ``threshold``."""
    k = len(centroids)
    parent = np.arange(k)

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    sim = centroids @ centroids.T
    np.fill_diagonal(sim, -1)
    pairs = np.argwhere(np.triu(sim > threshold, 1))
    for a, b in sorted(pairs.tolist(), key=lambda p: -sim[p[0], p[1]]):
        ra, rb = find(a), find(b)
        if ra != rb:
            if sizes[rb] > sizes[ra]:
                ra, rb = rb, ra
            parent[rb] = ra
    roots = np.array([find(i) for i in range(k)])
    _, out = np.unique(roots, return_inverse=True)
    return out


def choose_k(n_items: int, max_labels: int, min_size: int) -> int:
    """``max_labels``, lowered so that every cluster can have ``min_size`` items."""
    return int(max(1, min(max_labels, n_items // max(min_size, 1))))


def knn_graph(x: np.ndarray, n_neighbors: int, block: int = 2048):
    """Symmetric sparse graph: each row's ``n_neighbors`` most cosine-similar rows, weighted by that cosine
    (clipped at 0), symmetrised by max. Blocked exact search: memory O(n * n_neighbors + block * n)."""
    from scipy import sparse

    from ..embed import TopKIndex

    n = len(x)
    kk = min(n_neighbors + 1, n)
    s, i = TopKIndex(x).search(x, kk, query_block=block)
    rows = np.repeat(np.arange(n), kk)
    keep = i.ravel() != rows  # drop self-loops
    w = np.maximum(s.ravel()[keep], 0).astype(np.float64)
    g = sparse.csr_matrix((w, (rows[keep], i.ravel()[keep])), shape=(n, n))
    return g.maximum(g.T).tocsr()


def _spectral(x: np.ndarray, k: int, seed: int, n_neighbors: int, vote: bool = True) -> np.ndarray:
    """Spectral clustering of the cosine-weighted k-NN graph: the first ``k`` eigenvectors of its normalised
    Laplacian, rows normalised, then k-means with ``N_INIT`` restarts (restarts matter: one k-means run on
    the spectral embedding lands in a worse optimum; they cost seconds). Disconnected parts become clusters."""
    import warnings

    from sklearn.cluster import KMeans
    from sklearn.manifold import spectral_embedding

    g = knn_graph(x, n_neighbors)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "graph is not fully connected": fine, components become clusters
        emb = spectral_embedding(g, n_components=k, random_state=seed, drop_first=False)
    emb = _normalize(emb)
    lab = KMeans(k, n_init=N_INIT, random_state=seed).fit(emb).labels_
    return neighbour_vote(g, lab, k) if vote else lab


def knn_assign(xf: np.ndarray, flab: np.ndarray, xr: np.ndarray, k: int, n_neighbors: int) -> np.ndarray:
    """Cluster of each row of ``xr`` by the similarity-weighted vote of its ``n_neighbors`` nearest fitted
    rows: the items left out of the spectral sample follow the graph's clusters, which a nearest-centroid
    rule would cut with straight (Voronoi) boundaries."""
    from scipy import sparse

    from ..embed import TopKIndex

    kk = min(n_neighbors, len(xf))
    s, i = TopKIndex(xf).search(xr, kk)
    rows = np.repeat(np.arange(len(xr)), kk)
    votes = sparse.csr_matrix((np.maximum(s.ravel(), 1e-6).astype(np.float64), (rows, flab[i.ravel()])),
                              shape=(len(xr), k))
    return np.asarray(votes.argmax(axis=1)).ravel()


def neighbour_vote(g, lab: np.ndarray, k: int) -> np.ndarray:
    """One round of label smoothing on the graph: each item takes the label with the most similarity among
    its neighbours (its own label wins ties). Fixes items k-means put on the wrong side of a boundary
    in the spectral space although their nearest texts sit in another cluster."""
    from scipy import sparse

    n = len(lab)
    onehot = sparse.csr_matrix((np.ones(n), (np.arange(n), lab)), shape=(n, k))
    votes = (g @ onehot + onehot * 1e-6).tocsr()  # sparse: n x k never densified
    return np.asarray(votes.argmax(axis=1)).ravel()


#: Clusters of fewer distinct texts are dissolved into their nearest neighbours.
MIN_CLUSTER = 3


def cluster_embeddings(x: np.ndarray, k: int, *, seed: int = 0, method: str = "spectral", fit_max: int = FIT_MAX,
                       n_neighbors: int | None = None, merge_threshold: float = 0.95, outlier_z: float = OUTLIER_Z,
                       min_size: int = MIN_CLUSTER, vote: bool = True, assign: str = "knn") -> Clustering:
    """Cluster L2-normalised rows ``x`` into <= k clusters.

    ``spectral`` (default): spectral clustering of the ``n_neighbors``-nearest-neighbour graph (default
    :func:`auto_neighbors`) of up to ``fit_max`` items (a seeded sample); the rest take the vote of their nearest fitted items (``assign="knn"``) or the
    nearest centroid (``assign="centroid"``); ``vote=False`` skips the neighbour-vote smoothing. ``kmeans``:
    k-means over micro-clusters merged with Ward linkage (linear memory, for any size). Both then merge near-duplicate clusters, dissolve
    clusters under ``min_size`` items and mark outliers as -1.
    """
    n = len(x)
    k = choose_k(n, k, min_size)
    if k <= 1 or n <= 2:
        cent = _normalize(x.mean(axis=0, keepdims=True))
        lab, sc = nearest(x, cent)
        return Clustering(lab, sc, cent)
    if assign not in ("knn", "centroid"):
        raise ValueError(f"unknown assign rule {assign!r}")
    rng = np.random.default_rng(seed)
    fit = np.sort(rng.choice(n, fit_max, replace=False)) if n > fit_max else np.arange(n)
    xf = x[fit]
    if n_neighbors is None:
        n_neighbors = auto_neighbors(len(fit), k)
    if method == "spectral" and len(fit) > 3 * k:
        flab = _spectral(xf, k, seed, min(n_neighbors, len(fit) - 1), vote)
    elif method in ("spectral", "kmeans"):
        flab = _kmeans_ward(xf, k, seed)
    else:
        raise ValueError(f"unknown clustering method {method!r}")
    _, flab = np.unique(flab, return_inverse=True)
    w1 = np.ones(len(fit))
    cent = _centroids(xf, flab, w1, int(flab.max() + 1))
    lab = np.empty(n, dtype=np.int64)
    lab[fit] = flab  # the fitted items keep their cluster (a nearest-centroid pass would undo the graph's work)
    rest = np.setdiff1d(np.arange(n), fit, assume_unique=True)
    if len(rest):
        lab[rest] = (nearest(x[rest], cent)[0] if assign == "centroid"
                     else knn_assign(xf, flab, x[rest], len(cent), n_neighbors))
    w = np.ones(n)
    sizes = np.bincount(lab, minlength=len(cent))
    mapping = merge_near_duplicates(cent, sizes, merge_threshold)
    merged = len(cent) - int(mapping.max() + 1)
    # Tiny clusters (fewer than min_size items) are dissolved into their nearest neighbours.
    lab = mapping[lab]
    cent = _centroids(x, lab, w, int(mapping.max() + 1))
    sizes = np.bincount(lab, minlength=len(cent))
    small = np.flatnonzero(sizes < min_size)
    if len(small) and len(small) < len(cent):
        keep = np.flatnonzero(sizes >= min_size)
        moved = np.isin(lab, small)
        new_of_old = np.full(len(cent), -1)
        new_of_old[keep] = np.arange(len(keep))
        lab = new_of_old[lab]
        cent = cent[keep]
        lab[moved], _ = nearest(x[moved], cent)
        cent = _centroids(x, lab, w, len(cent))
    sc = rowdot(x, cent, lab)
    lab = _mark_outliers(lab, sc, outlier_z)
    return Clustering(lab, sc, cent, merged)


def _kmeans_ward(x: np.ndarray, k: int, seed: int) -> np.ndarray:
    n = len(x)
    m = int(min(n, max(2 * k, min(8 * k, n // 5))))
    if m <= k:
        return _kmeans(x, k, seed).labels_
    micro = _kmeans(x, m, seed)
    mw = np.bincount(micro.labels_, minlength=m).astype(np.float64)
    keep = mw > 0
    group = np.full(m, -1)
    group[keep] = _ward(micro.cluster_centers_[keep].astype(np.float64), mw[keep], k)
    mc = micro.cluster_centers_
    init = np.stack([np.average(mc[group == g], axis=0, weights=mw[group == g]) for g in range(group.max() + 1)])
    return _kmeans(x, len(init), seed, init=init).labels_


def _centroids(x: np.ndarray, lab: np.ndarray, w: np.ndarray, k: int) -> np.ndarray:
    """Normalised weighted mean per cluster (a sparse one-hot product: no n x dim temporaries)."""
    from scipy import sparse

    onehot = sparse.csr_matrix((np.asarray(w, dtype=np.float32), (lab, np.arange(len(lab)))), shape=(k, len(lab)))
    return _normalize(np.asarray(onehot @ x))


def rowdot(x: np.ndarray, cent: np.ndarray, lab: np.ndarray, chunk: int = 65536) -> np.ndarray:
    """Cosine of each row with its own cluster's centroid, in chunks."""
    out = np.empty(len(x), dtype=np.float32)
    for b in range(0, len(x), chunk):
        out[b : b + chunk] = (x[b : b + chunk] * cent[lab[b : b + chunk]]).sum(1)
    return out


def _mark_outliers(lab: np.ndarray, sc: np.ndarray, z: float) -> np.ndarray:
    out = lab.copy()
    if z is None or z <= 0:
        return out
    for c in np.unique(lab):
        idx = np.flatnonzero(lab == c)
        if len(idx) < 10:
            continue
        s = sc[idx]
        med = np.median(s)
        mad = 1.4826 * np.median(np.abs(s - med))
        if mad <= 1e-6:
            continue
        bad = idx[(s - med) / mad < -z]
        cap = int(OTHER_MAX * len(idx))  # never more than OTHER_MAX of a cluster: the least similar ones
        if len(bad) > cap:
            bad = idx[np.argsort(s, kind="stable")[:cap]]
        out[bad] = -1
    return out
