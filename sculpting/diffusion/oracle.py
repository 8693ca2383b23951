"""The exact time classifier of diffusion bases trained on finite data sets (a data oracle).

Base i's data set D_i is a finite set of images; a type shared by two bases holds the same images
in both. Let u_1..u_K be the distinct images of all the sets and W[i, k] the share of u_k in D_i
(count / |D_i|). Under the forward SDE (x_t = m_t x_0 + σ_t z; VE: m_t = 1) each base's marginal
is a Gaussian mixture over its images,

    p_i^t(x) = Σ_k W[i, k] N(x; m_t u_k, σ_t² I),

so every quantity of the sculpting classifier is in closed form:

    Q(y_1 = i | x_t)           ∝ p_i^t(x_t)                                   (uniform prior)
    π_i(k | x_t)               ∝ W[i, k] N(x_t; m_t u_k, σ_t² I)              (which image, given base i)
    ρ_s(j | u_k)               = ω_s(j) W[j, k] / Σ_l ω_s(l) W[l, k]          (slot s's label of image u_k)
    Q(y_1 = i, y_2.. y_n | x_t) = Q(y_1 = i | x_t) Σ_k π_i(k | x_t) Π_{s ≥ 2} ρ_s(y_s | u_k)

with slot priors ω_s uniform, except slot 2 of two bases: (α, 1 − α) (α-conditioned, like the
learned classifier). :class:`DataOracle` has the learned classifier's interface (``n_bases``,
``n_slots``, ``alpha_conditioned``, ``image_shape``, ``log_joint``, ``log_first``), so
``sc.compose(bases, sc.data_oracle(datasets, bases), op)`` guides with it; gradients flow by
autograd. The squared distances are one matrix product per call ([B, D] × [D, K]).
"""

from __future__ import annotations

import itertools
import math

import torch

from sculpting.infrastructure.bounds import check_count, memory_limit

__all__ = ["DataOracle", "EmpiricalScore", "data_oracle"]


class DataOracle:
    """Exact classifier of bases whose training sets are ``datasets`` (see the module docstring).

    Args:
        datasets: one tensor ``[N_i, *image_shape]`` per base, in the scale the bases were trained on.
        sde: the bases' SDE (``mean_coef(t)``, ``marginal_std(t)``).
        n_slots: observation slots (default: 2 for two bases, else the number of bases).
        dtype: precision of the distances (float64: the posterior at small t is sharp, and
            float32 cancellation in ‖x − m u‖² would blur it).
    """

    def __init__(self, datasets, sde, n_slots: int | None = None, dtype=torch.float64):
        if not isinstance(datasets, (list, tuple)) or len(datasets) < 2:
            raise TypeError("datasets must be a list of ≥ 2 tensors [N_i, *image_shape], one per base")
        shapes = {tuple(d.shape[1:]) for d in datasets if isinstance(d, torch.Tensor)}
        if len(shapes) != 1 or any(not isinstance(d, torch.Tensor) or len(d) == 0 for d in datasets):
            raise ValueError(
                f"every data set must be a non-empty tensor of one image shape, got shapes {sorted(shapes)}"
            )
        n_images, d = sum(len(x) for x in datasets), math.prod(next(iter(shapes)))
        need = 4 * n_images * d * torch.tensor([], dtype=dtype).element_size()  # the stacked sets, sorted, unique
        if need > memory_limit():
            raise ValueError(
                f"a data oracle of {n_images} images would need about {need / 2**30:.1f} GB, more than "
                f"the {memory_limit() / 2**30:.1f} GB allowed (a quarter of this machine's memory); "
                "use fewer images (a subset of each set)"
            )
        if not all(bool(torch.isfinite(d).all()) for d in datasets):
            raise ValueError("the data sets hold non-finite values")
        self.n_bases = len(datasets)
        self.n_slots = (
            (2 if self.n_bases == 2 else self.n_bases) if n_slots is None else check_count("n_slots", n_slots, 1, 4)
        )
        self.alpha_conditioned = self.n_bases == 2
        self.image_shape = shapes.pop()
        self.sde = sde
        flat = torch.cat([d.reshape(len(d), -1) for d in datasets]).to(dtype)
        images, inverse = torch.unique(flat, dim=0, return_inverse=True)  # [K, D] distinct images
        W = torch.zeros(self.n_bases, len(images), dtype=torch.float64)
        start = 0
        for i, d in enumerate(datasets):
            idx = inverse[start : start + len(d)]
            W[i].index_add_(0, idx, torch.full((len(d),), 1.0 / len(d), dtype=torch.float64))
            start += len(d)
        self._set_table(images, W, dtype)

    def _set_table(self, images, W, dtype):
        self.images, self.W = images.to(dtype), W.to(dtype)  # [K, D], [m, K]
        self.log_W = torch.where(W > 0, W.log(), torch.full_like(W, -math.inf)).to(dtype)
        self.sq_norms = (self.images**2).sum(1)  # [K]
        self.device = images.device

    @classmethod
    def from_weights(
        cls, images: torch.Tensor, weights: torch.Tensor, sde, n_slots: int | None = None, dtype=torch.float64
    ) -> "DataOracle":
        """The oracle of bases given as weights over shared images: ``images`` ``[K, *shape]``,
        ``weights`` ``[m, K]`` (each row a distribution; e.g. an exact composition of data-set
        bases, which is again a weighted set of the same images)."""
        W = torch.as_tensor(weights, dtype=torch.float64)
        if W.dim() != 2 or W.shape[1] != len(images) or W.shape[0] < 2:
            raise ValueError(f"weights must be [m ≥ 2, K = {len(images)}], got {tuple(W.shape)}")
        if bool((W < 0).any()) or not torch.allclose(W.sum(1), torch.ones(len(W), dtype=torch.float64), atol=1e-6):
            raise ValueError("each row of weights must be a distribution (non-negative, summing to 1)")
        self = cls.__new__(cls)
        self.n_bases = len(W)
        self.n_slots = (
            (2 if self.n_bases == 2 else self.n_bases) if n_slots is None else check_count("n_slots", n_slots, 1, 4)
        )
        self.alpha_conditioned = self.n_bases == 2
        self.image_shape = tuple(images.shape[1:])
        self.sde = sde
        keep = W.sum(0) > 0  # images no base holds play no part
        self._set_table(images.reshape(len(images), -1)[keep], W[:, keep], dtype)
        return self

    def empirical_scores(self) -> list:
        """One score model per base: the exact score of p_i^t (the data itself, diffused)."""
        return [EmpiricalScore(self, i) for i in range(self.n_bases)]

    @property
    def n_images(self) -> int:
        return len(self.images)

    def to(self, device):
        for name in ("images", "W", "log_W", "sq_norms"):
            setattr(self, name, getattr(self, name).to(device))
        self.device = torch.device(device)
        return self

    def _log_kernel(self, x, t):
        """``[B, K]`` log N(x; m_t u_k, σ_t² I) up to a term constant in k (the ‖x‖² term is left
        out: it cancels in every posterior), in the oracle's precision."""
        B = len(x)
        dt = self.images.dtype
        m = self.sde.mean_coef(t).to(device=x.device, dtype=dt).reshape(B, 1)
        var = self.sde.marginal_std(t).to(device=x.device, dtype=dt).reshape(B, 1) ** 2
        xf = x.reshape(B, -1).to(dt)
        d2 = m**2 * self.sq_norms[None] - 2 * m * (xf @ self.images.T)
        return -d2 / (2 * var)

    def _slot_priors(self, logit_alpha):
        m = self.n_bases
        uniform = torch.full((m,), 1.0 / m, dtype=self.W.dtype, device=self.W.device)
        if not self.alpha_conditioned:
            return [uniform] * (self.n_slots - 1)
        a = 1 / (1 + math.exp(-float(0.0 if logit_alpha is None else logit_alpha)))
        first = torch.tensor([a, 1 - a], dtype=self.W.dtype, device=self.W.device)
        return [first] + [uniform] * (self.n_slots - 2)

    def _tail_table(self, logit_alpha):
        """``[K, m^(n−1)]``: Π_{s≥2} ρ_s(y_s | u_k) over ordered tail tuples (row-major)."""
        K = self.n_images
        rhos = []
        for w in self._slot_priors(logit_alpha):
            r = w[:, None] * self.W
            rhos.append(r / r.sum(0, keepdim=True).clamp_min(1e-300))  # [m, K]
        table = torch.ones(K, 1, dtype=self.W.dtype, device=self.W.device)
        for r in rhos:
            table = (table[:, :, None] * r.T[:, None, :]).reshape(K, -1)
        return table

    def log_joint(self, x: torch.Tensor, t: torch.Tensor, logit_alpha=None) -> torch.Tensor:
        """``[B, m^n]`` log Q(y_1..y_n | x_t) over ordered tuples (row-major in the slots)."""
        if tuple(x.shape[1:]) != tuple(self.image_shape):
            raise ValueError(f"the data oracle takes images {self.image_shape}, got {tuple(x.shape[1:])}")
        lk = self._log_kernel(x, t)  # [B, K], in the oracle's precision
        comp = self.log_W[None] + lk[:, None, :]  # [B, m, K]
        lp = torch.logsumexp(comp, dim=2)  # [B, m] log p_i^t (+ const)
        q1 = torch.log_softmax(lp, dim=1)
        if self.n_slots == 1:
            return q1.to(x.dtype)
        post = torch.softmax(comp, dim=2)  # [B, m, K]
        tail = post @ self._tail_table(logit_alpha)  # [B, m, m^(n-1)]
        return (q1[:, :, None] + tail.clamp_min(1e-300).log()).reshape(len(x), -1).to(x.dtype)

    def log_first(self, x: torch.Tensor, t: torch.Tensor, logit_alpha=None) -> torch.Tensor:
        """``[B, m]`` log Q(y_1 = i | x_t)."""
        j = self.log_joint(x, t, logit_alpha)
        return torch.logsumexp(j.reshape(len(j), self.n_bases, -1), dim=2)

    def __repr__(self):
        return (
            f"DataOracle({self.n_bases} bases, {self.n_images} distinct images of shape {self.image_shape}, "
            f"{self.n_slots} slots)"
        )


class EmpiricalScore:
    """The exact score of a data-set base under the forward SDE,
    ∇ log p_i^t(x) = (m_t Σ_k π_i(k | x) u_k − x) / σ_t², a score model (``sde``, ``image_shape``,
    ``score``) that reproduces its training images: the reference "base error 0" of the oracle."""

    def __init__(self, oracle: DataOracle, index: int):
        self.oracle, self.index = oracle, int(index)
        self.sde, self.image_shape = oracle.sde, tuple(oracle.image_shape)
        self.device = oracle.device

    def score(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        o, B = self.oracle, len(x)
        post = torch.softmax(o.log_W[self.index][None] + o._log_kernel(x, t), dim=1)  # [B, K]
        dt = o.images.dtype
        m = o.sde.mean_coef(t).to(device=x.device, dtype=dt).reshape(B, 1)
        var = o.sde.marginal_std(t).to(device=x.device, dtype=dt).reshape(B, 1) ** 2
        s = (m * (post @ o.images) - x.reshape(B, -1).to(dt)) / var
        return s.reshape(x.shape).to(x.dtype)


def data_oracle(datasets, sde_or_bases, n_slots: int | None = None) -> DataOracle:
    """``sc.data_oracle(datasets, bases)``: the exact classifier of diffusion bases trained on the
    finite ``datasets`` (one tensor per base, in the bases' data scale). ``sde_or_bases``: the bases
    (their SDE is used) or an SDE.

    Examples:
        >>> import torch, sculpting as sc
        >>> from sculpting.diffusion.sde import VESDE
        >>> a, b = torch.zeros(1, 1, 2, 2), torch.ones(1, 1, 2, 2)     # two bases, one training image each
        >>> oracle = sc.data_oracle([a, b], VESDE())
        >>> q = oracle.log_first(a, torch.full((1,), 1e-3), 0.0).exp()   # P(first observation = base | x near a)
        >>> [round(float(v), 3) for v in q[0]]
        [1.0, 0.0]
    """
    sde = sde_or_bases
    if isinstance(sde_or_bases, (list, tuple)):
        sdes = {repr(getattr(b, "sde", None)) for b in sde_or_bases}
        if len(sdes) != 1 or getattr(sde_or_bases[0], "sde", None) is None:
            raise ValueError("the bases must share one SDE")
        if len(sde_or_bases) != len(datasets):
            raise ValueError(f"{len(datasets)} data sets for {len(sde_or_bases)} bases")
        sde = sde_or_bases[0].sde
    if not (hasattr(sde, "mean_coef") and hasattr(sde, "marginal_std")):
        raise TypeError("data_oracle needs the bases or their SDE (mean_coef, marginal_std)")
    return DataOracle(datasets, sde, n_slots)


def brute_force_log_joint(datasets, sde, x, t, logit_alpha=None, n_slots: int = 2) -> torch.Tensor:
    """Reference in float64 loops (tests): the same posterior by enumerating every training image of
    every base and every tail label tuple."""
    m = len(datasets)
    B = len(x)
    out = torch.zeros(B, m**n_slots, dtype=torch.float64)
    a = 1 / (1 + math.exp(-float(0.0 if logit_alpha is None else logit_alpha)))
    priors = ([[a, 1 - a]] if m == 2 else [[1 / m] * m]) + [[1 / m] * m] * (n_slots - 2)

    def p0(j, u):  # share of image u in base j's set
        return sum(bool(torch.equal(v, u)) for v in datasets[j]) / len(datasets[j])

    for b in range(B):
        mt = float(sde.mean_coef(t[b : b + 1]))
        var = float(sde.marginal_std(t[b : b + 1])) ** 2
        xb = x[b].double().reshape(-1)
        dens = []
        per = []
        for i in range(m):
            ks = [math.exp(-float(((xb - mt * u.double().reshape(-1)) ** 2).sum()) / (2 * var)) for u in datasets[i]]
            dens.append(sum(ks) / len(ks))
            per.append(ks)
        z = sum(dens)
        for i in range(m):
            for tail in itertools.product(range(m), repeat=n_slots - 1):
                acc = 0.0
                for u, kv in zip(datasets[i], per[i]):
                    w = kv / len(datasets[i]) / dens[i]
                    for s, j in enumerate(tail):
                        num = priors[s][j] * p0(j, u)
                        w *= num / sum(priors[s][l] * p0(l, u) for l in range(m))
                    acc += w
                idx = i * m ** (n_slots - 1) + sum(j * m ** (n_slots - 2 - s) for s, j in enumerate(tail))
                out[b, idx] = math.log(max(dens[i] / z * acc, 1e-300))
    return out
