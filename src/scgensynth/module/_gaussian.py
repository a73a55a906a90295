from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from scgensynth._utils._random import RowNoise, draw_noise

from ._base import ConditionalGeneratorModule, FittedStatisticsMixin

#: buffers whose first dimension is only known from the fitted data (resized on load)
_FITTED_BUFFERS = (
    "group_keys",
    "group_sizes",
    "means",
    "cont_means",
    "iso_scale",
    "shrinkage",
    "components",
    "component_scale",
    "component_group",
    "cont_effect",
    "residual_scale",
)
#: ridge penalty of the continuous covariates' effect (on standardized covariates)
_RIDGE = 1.0


def ledoit_wolf_shrinkage(centred: torch.Tensor) -> tuple[float, float]:
    """Ledoit-Wolf shrinkage ``a`` and target scale ``mu`` of centred rows (``n x p``).

    The covariance ``S = C.T C / n`` is shrunk to ``(1 - a) S + a mu I`` with ``mu = tr(S) / p``
    and the intensity of Ledoit & Wolf (2004) as :func:`sklearn.covariance.ledoit_wolf`
    computes it, from ``n x n`` products only (never the ``p x p`` matrix, 3.2 GB at 20,000
    genes): ``||S||_F^2 = ||C C.T||_F^2 / n^2``, ``beta = (sum_k ||c_k||^4 / n - ||S||_F^2) /
    (n p)``, ``delta = ||S - mu I||_F^2 / p`` and ``a = min(beta, delta) / delta``.

    Examples
    --------
    >>> c = torch.randn(20, 50, dtype=torch.float64)
    >>> a, mu = ledoit_wolf_shrinkage(c - c.mean(0))
    >>> 0 <= a <= 1
    True
    """
    c = centred.double()
    return shrinkage_from_gram(c @ c.T, c.shape[1])


def shrinkage_from_gram(gram: torch.Tensor, p: int) -> tuple[float, float]:
    """:func:`ledoit_wolf_shrinkage` from the Gram matrix ``C C.T`` of centred rows of ``p`` genes.

    Examples
    --------
    >>> c = torch.randn(20, 50, dtype=torch.float64)
    >>> c = c - c.mean(0)
    >>> shrinkage_from_gram(c @ c.T, 50) == ledoit_wolf_shrinkage(c)
    True
    """
    n = gram.shape[0]
    gram = gram.double()
    row_sq = torch.diagonal(gram)
    mu = float(row_sq.sum()) / (n * p)
    s_frob2 = float((gram * gram).sum()) / n**2
    beta = (float((row_sq**2).sum()) / n - s_frob2) / (p * n)
    delta = (s_frob2 - p * mu**2) / p
    if p == 1 or delta <= 0:  # one gene, or S proportional to the identity (e.g. C = 0)
        return 0.0, mu
    return min(max(beta, 0.0), delta) / delta, mu


#: elements of one float64 temporary block (32 MB)
_BLOCK = 2**22


def _blocks(n: int, size: int = 1024):
    """Slices of ``range(n)`` of at most ``size`` (at least 1)."""
    size = max(1, int(size))
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


def _gram(c: torch.Tensor) -> torch.Tensor:
    """``C C.T`` in float64, one block of columns at a time."""
    gram = torch.zeros(c.shape[0], c.shape[0], dtype=torch.float64)
    for cols in _blocks(c.shape[1], _BLOCK // max(1, c.shape[0])):
        block = c[:, cols].double()
        gram += block @ block.T
    return gram


def _directions_in_place(c: torch.Tensor, gram: torch.Tensor) -> torch.Tensor:
    """Squared singular values of ``C`` above 1e-6 of the largest (from its Gram matrix).

    The matching right singular vectors overwrite the first rows of ``C`` (float32, a block
    of genes at a time).
    """
    evals, u = torch.linalg.eigh(gram)
    evals, u = evals.flip(0), u.flip(1)
    top = evals[0].clamp_min(1e-300) if len(evals) else torch.tensor(1.0)
    keep = evals > top * 1e-12
    evals, u = evals[keep], u[:, keep]
    k = len(evals)
    proj = (u / evals.sqrt()).T  # k x n
    for cols in _blocks(c.shape[1], _BLOCK // max(1, c.shape[0])):
        c[:k, cols] = (proj @ c[:, cols].double()).float()
    return evals


class GaussianModule(FittedStatisticsMixin, ConditionalGeneratorModule):
    """A multivariate Gaussian per covariate combination, with a shrunk covariance.

    For each combination of categorical covariates seen in training (a *group*), samples in
    network space (per-gene standardized) are drawn from ``N(m_g, Sigma_g)``: ``m_g`` is the
    group's mean and ``Sigma_g = (1 - a_g) S_g + a_g mu_g I`` its sample covariance ``S_g``
    shrunk towards a scaled identity (Ledoit-Wolf intensity by default). A group of a single
    sample has no covariance of its own and takes the pooled within-group one. Continuous
    covariates shift the mean linearly (one ridge regression on the within-group residuals,
    shared by all groups), and their effect is removed before the covariances are estimated.

    The ``p x p`` covariances are never formed. A sample is ``x = m_g + Sigma_g^(1/2) z``
    with ``z ~ N(0, I_p)`` (:attr:`noise_input`, one value per gene) and the symmetric square
    root, which acts on the group's principal directions ``v_k`` (from its centred samples:
    at most ``n_g - 1`` of them) as ``sqrt(lambda_k)`` and on the rest of the space as
    ``sqrt(a_g mu_g)``: ``Sigma^(1/2) z = sqrt(a mu) z + sum_k (sqrt(lambda_k) - sqrt(a mu))
    (v_k . z) v_k``. Fitting costs one ``n_g x n_g`` Gram matrix and its eigendecomposition
    per group (float64 sums over blocks of genes); the directions (at most one ``n x p``
    float32 matrix, as much as the training data) are written over the centred samples.
    Holding ``z`` fixed and changing the group maps a sample to the same "position" in
    another group's distribution, which :func:`scgensynth.tl.counterfactual` uses.

    Parameters
    ----------
    n_input
        Number of genes.
    n_cats_per_cov
        Number of categories of each categorical covariate.
    n_continuous_cov
        Number of continuous covariates.
    shrinkage
        ``"ledoit_wolf"`` (the Ledoit-Wolf intensity per group) or a number in ``[0, 1]``
        used for every group (0: the sample covariance; 1: a diagonal ``mu I``).
    scaling
        Scaling mode (see :class:`~scgensynth.nn.ExpressionScaling`).

    Examples
    --------
    >>> module = GaussianModule(n_input=3, n_cats_per_cov=[2])
    >>> x = torch.randn(6, 3)
    >>> module.fit(x, cat=torch.tensor([[0], [0], [0], [1], [1], [1]]))
    >>> module.n_groups
    2
    >>> gen = torch.Generator().manual_seed(0)
    >>> module.generate_scaled(5, cat=torch.ones(5, 1, dtype=torch.long), generator=gen).shape
    torch.Size([5, 3])
    """

    noise_input = "z"
    fitted_buffers = _FITTED_BUFFERS

    def __init__(
        self,
        n_input: int,
        n_cats_per_cov: Sequence[int] = (),
        n_continuous_cov: int = 0,
        shrinkage: str | float = "ledoit_wolf",
        scaling: str = "standardize",
    ):
        super().__init__(n_input, n_cats_per_cov, n_continuous_cov, scaling)
        self.shrinkage_method = check_shrinkage(shrinkage)
        p, k = self.n_input, self.n_continuous_cov
        self.register_buffer("group_keys", torch.zeros(0, dtype=torch.long))
        self.register_buffer("group_sizes", torch.zeros(0, dtype=torch.long))
        self.register_buffer("means", torch.zeros(0, p))
        self.register_buffer("cont_means", torch.zeros(0, k))
        self.register_buffer("iso_scale", torch.zeros(0))
        self.register_buffer("shrinkage", torch.zeros(0))
        self.register_buffer("components", torch.zeros(0, p))
        self.register_buffer("component_scale", torch.zeros(0))
        self.register_buffer("component_group", torch.zeros(0, dtype=torch.long))
        self.register_buffer("cont_effect", torch.zeros(k, p))
        #: per-gene spread outside the components (set by :meth:`set_moments`; empty: none)
        self.register_buffer("residual_scale", torch.zeros(0))

    @property
    def noise_width(self) -> int:
        """One standard normal value per gene."""
        return self.n_input

    @property
    def n_groups(self) -> int:
        """Number of fitted groups (covariate combinations seen in training)."""
        return int(self.group_keys.shape[0])

    # -- fitting ------------------------------------------------------------------------------
    def fit(
        self,
        x_scaled: torch.Tensor,
        cat: torch.Tensor | None = None,
        cont: torch.Tensor | None = None,
        copy: bool = True,
    ) -> None:
        """Estimate every group's mean and covariance from samples in network space.

        Sums are taken in float64 a block at a time on a float32 working copy of
        ``x_scaled``. With ``copy=False`` a float32 CPU ``x_scaled`` is itself the working
        space: it is overwritten, and its storage becomes :attr:`components`, so that
        fitting needs little memory beyond the data (rows sorted by group avoid any copy;
        otherwise each group's rows are copied once).
        """
        n = x_scaled.shape[0]
        if n < 2 or x_scaled.shape[1] != self.n_input:
            msg = (
                f"The Gaussian generator needs at least two training samples of "
                f"{self.n_input} genes (one sample has no covariance); got the shape "
                f"{tuple(x_scaled.shape)}. Train on more samples."
            )
            raise ValueError(msg)
        x = x_scaled.detach()
        if copy or x.dtype != torch.float32 or x.device.type != "cpu":
            x = x.to("cpu", torch.float32, copy=True)
        keys = self._keys(cat, n).cpu()
        groups, inverse = torch.unique(keys, return_inverse=True)
        sizes = torch.bincount(inverse, minlength=len(groups))
        means = torch.zeros(len(groups), self.n_input, dtype=torch.float64)
        step = _BLOCK // self.n_input
        for rows in _blocks(n, step):
            means.index_add_(0, inverse[rows], x[rows].double())
        means /= sizes[:, None]
        for rows in _blocks(n, step):  # centred in place: x holds the residuals from here on
            x[rows] = (x[rows].double() - means[inverse[rows]]).float()
        u = self._group_centred_cont(cont, inverse, sizes)
        effect = torch.zeros(self.n_continuous_cov, self.n_input, dtype=torch.float64)
        cont_means = torch.zeros(len(groups), self.n_continuous_cov, dtype=torch.float64)
        if u is not None:
            cont_means = self._group_means(self.standardize_continuous(cont).double().cpu(),
                                           inverse, sizes)  # fmt: skip
            gram = u.T @ u + _RIDGE * torch.eye(u.shape[1], dtype=torch.float64)
            for cols in _blocks(self.n_input, _BLOCK // n):
                effect[:, cols] = torch.linalg.solve(gram, u.T @ x[:, cols].double())
            for rows in _blocks(n, step):
                x[rows] = (x[rows].double() - u[rows] @ effect).float()
        self._fit_covariances(x, inverse, sizes, means)
        self.group_keys = groups.to(self.device)
        self.group_sizes = sizes.to(self.device)
        self.means = means.float().to(self.device)
        self.cont_means = cont_means.float().to(self.device)
        self.cont_effect = effect.float().to(self.device)

    def set_moments(
        self,
        group_keys: torch.Tensor,
        group_sizes: torch.Tensor,
        means: torch.Tensor,
        directions: torch.Tensor,
        variances: torch.Tensor,
        residual_variance: float | torch.Tensor,
    ) -> None:
        """Set the groups from moments estimated elsewhere (e.g. with differential privacy).

        Every group gets its mean and a covariance: ``variances`` along the orthonormal
        ``directions`` (``k x p``, shared by every group, or ``groups x k x p`` with
        ``groups x k`` variances) and, in the rest of the space, the projection
        of a diagonal covariance of ``residual_variance`` (one number, or one per gene):
        ``x = m + V diag(sqrt(variances)) V^T z + (I - V^T V) D z``. Continuous covariates
        have no effect.

        Examples
        --------
        >>> module = GaussianModule(n_input=3, n_cats_per_cov=[2])
        >>> v = torch.eye(3)[:1]
        >>> module.set_moments(torch.tensor([0, 1]), torch.tensor([5, 5]), torch.zeros(2, 3),
        ...                    v, torch.tensor([4.0]), 0.25)
        >>> x = module.generate_scaled(20000, cat=torch.zeros(20000, 1, dtype=torch.long))
        >>> [round(float(s), 1) for s in x.std(0)]
        [2.0, 0.5, 0.5]
        """
        g = len(group_keys)
        if directions.dim() == 2:  # one covariance shared by every group
            directions = directions.expand(g, *directions.shape)
            variances = variances.expand(g, *variances.shape)
        k = directions.shape[1]
        if means.shape != (g, self.n_input) or directions.shape != (g, k, self.n_input):
            msg = (
                "means must be (groups x genes) and directions (k x genes) or "
                "(groups x k x genes)."
            )
            raise ValueError(msg)
        resid = torch.as_tensor(residual_variance, dtype=torch.float64).clamp_min(0).sqrt()
        resid = resid.expand(self.n_input).float()
        dev = self.device
        self.group_keys = torch.as_tensor(group_keys, dtype=torch.long).to(dev)
        self.group_sizes = torch.as_tensor(group_sizes, dtype=torch.long).to(dev)
        self.means = means.float().to(dev)
        self.cont_means = torch.zeros(g, self.n_continuous_cov, device=dev)
        self.cont_effect = torch.zeros(self.n_continuous_cov, self.n_input, device=dev)
        self.iso_scale = torch.zeros(g, device=dev)
        self.shrinkage = torch.full((g,), float("nan"), device=dev)
        self.components = directions.reshape(g * k, -1).float().contiguous().to(dev)
        scale = variances.reshape(g * k).double().clamp_min(0).sqrt()
        self.component_scale = scale.float().to(dev)
        self.component_group = torch.arange(g).repeat_interleave(k).to(dev)
        self.residual_scale = resid.contiguous().to(dev)

    def _keys(self, cat: torch.Tensor | None, n: int) -> torch.Tensor:
        if cat is None or not self.n_cats_per_cov:
            return torch.zeros(n, dtype=torch.long)
        return self.combination_keys(cat)

    @staticmethod
    def _group_means(values: torch.Tensor, inverse: torch.Tensor, sizes: torch.Tensor):
        out = torch.zeros(len(sizes), values.shape[1], dtype=values.dtype)
        out.index_add_(0, inverse, values)
        return out / sizes[:, None]

    def _group_centred_cont(self, cont, inverse, sizes) -> torch.Tensor | None:
        """Standardized continuous covariates minus their group's mean (None without any)."""
        if cont is None or self.n_continuous_cov == 0:
            return None
        u = self.standardize_continuous(cont).double().cpu()
        return u - self._group_means(u, inverse, sizes)[inverse]

    def _fit_covariances(self, resid, inverse, sizes, means) -> None:
        """Shrinkage, isotropic scale and principal directions of every group.

        ``resid`` (float32, centred) is overwritten: each group's directions take the first
        rows of its samples, and the kept rows are then moved to the top and become
        :attr:`components`. A group of one sample takes the pooled directions of the
        groups with more (or, when every group has one, those of the group means).
        """
        n = resid.shape[0]
        row_scale = torch.zeros(n, dtype=torch.float64)
        row_group = torch.full((n,), -1, dtype=torch.long)
        pooled = self._pooled_directions(resid, inverse, sizes, means)
        iso, shrink, extra = [], [], []
        for g, size in enumerate(sizes.tolist()):
            rows = torch.nonzero(inverse == g).ravel()
            if size > 1:
                contiguous = bool((rows[-1] - rows[0] + 1) == size)
                c = resid[int(rows[0]) : int(rows[-1]) + 1] if contiguous else resid[rows]
                gram = _gram(c)
                s2 = _directions_in_place(c, gram)
                if not contiguous:
                    resid[rows[: len(s2)]] = c[: len(s2)]
            else:
                gram, s2, vt = pooled
            a, mu = self._shrinkage_of(gram, resid.shape[1])
            scale = ((1.0 - a) * s2 / gram.shape[0] + a * mu).sqrt() - (a * mu) ** 0.5
            if size > 1:
                row_scale[rows[: len(s2)]], row_group[rows[: len(s2)]] = scale, g
            else:
                extra.append((vt, scale, g))
            iso.append((a * mu) ** 0.5)
            shrink.append(a)
        kept = torch.nonzero(row_group >= 0).ravel()
        # move the kept rows up (a row is never written before it is read)
        for block in _blocks(len(kept), _BLOCK // (2 * resid.shape[1])):
            resid[block] = resid[kept[block]]
        comps = [resid[: len(kept)], *(vt for vt, _, _ in extra)]
        scales = [row_scale[kept], *(sc for _, sc, _ in extra)]
        owner = [row_group[kept], *(torch.full((len(sc),), g) for _, sc, g in extra)]
        dev = self.device
        self.components = (comps[0] if len(comps) == 1 else torch.cat(comps)).to(dev)
        self.component_scale = torch.cat(scales).float().to(dev)
        self.component_group = torch.cat(owner).to(dev)
        self.iso_scale = torch.tensor(iso, dtype=torch.float32, device=dev)
        self.shrinkage = torch.tensor(shrink, dtype=torch.float32, device=dev)

    @staticmethod
    def _pooled_directions(resid, inverse, sizes, means):
        """``(gram, s2, directions)`` a group of one sample takes; None if there is none."""
        if not bool((sizes == 1).any()):
            return None
        pooled = resid[sizes[inverse] > 1]  # a copy (the rows are overwritten later)
        if len(pooled) == 0:  # every group has one sample: the spread of the means
            pooled = (means - means.mean(0)).float()
        gram = _gram(pooled)
        s2 = _directions_in_place(pooled, gram)
        return gram, s2, pooled[: len(s2)].clone()

    def _shrinkage_of(self, gram: torch.Tensor, p: int) -> tuple[float, float]:
        a, mu = shrinkage_from_gram(gram, p)
        if self.shrinkage_method != "ledoit_wolf":
            a = float(self.shrinkage_method)
        return a, mu

    # -- sampling -----------------------------------------------------------------------------
    def group_index(self, cat: torch.Tensor | None, n: int) -> torch.Tensor:
        """Index of each row's group; an error for a combination not seen in training."""
        if self.n_groups == 0:
            msg = "The module is not fitted yet; train the model (or call fit) first."
            raise RuntimeError(msg)
        keys = self._keys(cat, n).to(self.group_keys.device)
        pos = torch.searchsorted(self.group_keys, keys).clamp_max(self.n_groups - 1)
        unseen = self.group_keys[pos] != keys
        if bool(unseen.any()):
            codes = cat[torch.nonzero(unseen).ravel()[0]].tolist()
            msg = (
                f"No training sample has the categorical covariate codes {codes}; the Gaussian "
                "generator models the combinations seen in training only."
            )
            raise ValueError(msg)
        return pos

    def generate_scaled(
        self,
        n: int,
        cat: torch.Tensor | None = None,
        cont: torch.Tensor | None = None,
        z: torch.Tensor | None = None,
        generator: torch.Generator | RowNoise | None = None,
        **kwargs,
    ) -> torch.Tensor:
        """``m_g + Sigma_g^(1/2) z`` (plus the continuous covariates' shift), network space."""
        group = self.group_index(cat, n)
        if z is None:
            z = draw_noise(generator, (n, self.n_input), device=self.device)
        z = z.to(self.device).float()
        out = self.means[group] + self.iso_scale[group, None] * z
        for g in torch.unique(group).tolist():
            rows = torch.nonzero(group == g).ravel()
            mine = self.component_group == g
            v, s = self.components[mine], self.component_scale[mine]
            out[rows] += ((z[rows] @ v.T) * s) @ v
            if self.residual_scale.numel():  # the per-gene spread outside the components
                r = z[rows] * self.residual_scale
                out[rows] += r - (r @ v.T) @ v
        u = self.standardize_continuous(cont)
        if u is not None:
            out += (u.to(self.device) - self.cont_means[group]) @ self.cont_effect
        return out


def check_shrinkage(shrinkage: str | float) -> str | float:
    """``"ledoit_wolf"`` or a number in ``[0, 1]``; anything else is a clear error."""
    if isinstance(shrinkage, str):
        if shrinkage != "ledoit_wolf":
            msg = f"shrinkage must be 'ledoit_wolf' or a number in [0, 1], not {shrinkage!r}."
            raise ValueError(msg)
        return shrinkage
    if isinstance(shrinkage, bool) or not isinstance(shrinkage, int | float | np.number):
        msg = f"shrinkage must be 'ledoit_wolf' or a number in [0, 1], not {shrinkage!r}."
        raise TypeError(msg)
    value = float(shrinkage)
    if not 0.0 <= value <= 1.0:
        msg = f"shrinkage must be in [0, 1] (0: sample covariance, 1: diagonal), not {value}."
        raise ValueError(msg)
    return value
