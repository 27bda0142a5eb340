"""Critical points and architecture classes of a network's input–output map Φ: ℝ^{n₀} → ℝ.

Kuehn & Kuntz (arXiv:2405.09351) classify feed-forward networks by the critical points of Φ.
For an MLP x ↦ w_Lᵀ φ(W_{L−1} ⋯ φ(W_1 x + b_1) ⋯) with a smooth, strictly monotone activation
(tanh, sigmoid, softplus: φ' > 0), the chain rule gives

    ∇Φ(x) = W_1ᵀ D_1 W_2ᵀ D_2 ⋯ W_{L−1}ᵀ D_{L−1} w_L,      D_l = diag(φ'(h_l)) invertible,

so the classes follow from the widths n₀, n₁, …, n_{L−1} and the ranks of the W_l:

* **non-augmented**: n₀ ≥ n₁ ≥ … ≥ n_{L−1} with full-rank weights: every W_lᵀ is injective,
  so ∇Φ never vanishes: Φ has *no* critical points;
* **augmented**: some layer is wider than the ones before allow, without a bottleneck:
  critical points can exist and, for all weights outside a Lebesgue-null set, every one is
  non-degenerate (Φ is a Morse function);
* **bottleneck**: a hidden layer narrower than the input (n_l < n₀) is followed by a wider one:
  Φ factors through ℝ^{n_l}, so each critical point of the later part pulls back to a set of
  dimension ≥ n₀ − n_l: critical points, if any, are degenerate (non-isolated);
* **degenerate**: a weight matrix is rank-deficient (numerically): by the normal-form theorem
  the network equals a smaller full-rank one whose widths include the ranks; its class is
  reported too (a rank-deficient layer usually acts as a bottleneck).

:func:`critical_points` finds the critical points in a box numerically (batched multi-start
Levenberg–Marquardt on ∇Φ = 0 with ``torch.func`` Hessians) and reports their index and
degeneracy.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional

import numpy as np

from ._result import Result, raise_if_failed
from ._system import ArrayLike
from ._validate import as_count, as_float_array, as_positive, check_finite_parameters

if TYPE_CHECKING:  # torch is optional and imported on first use
    import torch

__all__ = ["ArchitectureClass", "CriticalPoints", "architecture_class", "critical_points"]

# Elementwise activations the theory covers (smooth, φ' > 0 everywhere).
_SMOOTH_MONOTONE = ("Tanh", "Sigmoid", "Softplus", "Identity")


def _torch():
    from .sgd.torch_model import _torch as t

    return t()


@dataclass(frozen=True)
class ArchitectureClass:
    """The class of an MLP's input–output map (Kuehn & Kuntz 2024).

    Attributes
    ----------
    kind : str
        'non-augmented', 'augmented', 'bottleneck' or 'degenerate'.
    widths : tuple of int
        n₀ (input), n₁ … n_{L−1} (hidden), n_L (output).
    ranks : tuple of int
        Numerical rank of each weight matrix.
    effective_widths : tuple of int
        Widths of the equivalent full-rank network (a rank-deficient W_l inserts a layer of
        width rank(W_l)).
    effective_kind : str
        The class of that full-rank network (equals ``kind`` unless 'degenerate'), or
        'constant' when a weight matrix is zero (Φ constant: every point is critical).
    reason : str
        Why, in words.
    theory : str
        What the theory then says about critical points.
    smooth_monotone : bool
        Whether every activation is smooth with φ' > 0 (the theory's assumption).
    """

    kind: str
    widths: tuple
    ranks: tuple
    effective_widths: tuple
    effective_kind: str
    reason: str
    theory: str
    smooth_monotone: bool

    def __str__(self) -> str:
        return f"{self.kind}: {self.reason} {self.theory}"


_THEORY = {
    "non-augmented": "Φ has no critical points (∇Φ = W₁ᵀD₁⋯w_L never vanishes).",
    "augmented": "Φ may have critical points; for weights outside a measure-zero set each one "
                 "is non-degenerate (Φ is Morse).",
    "bottleneck": "Φ factors through the narrow layer: each critical point lies on a set of "
                  "dimension ≥ n₀ − n_min > 0, so critical points, if any, are degenerate.",
    "constant": "Every point is a critical point, and every one is degenerate (∇²Φ = 0).",
}


def _mlp_layers(model):
    """(list of Linear modules, list of activation names) of an nn.Sequential MLP."""
    torch = _torch()
    nn = torch.nn
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"model: expected an nn.Sequential MLP, got {type(model).__name__}")
    linears, acts = [], []
    for child in model:
        if isinstance(child, nn.Linear):
            linears.append(child)
        elif any(True for _ in child.parameters()):
            raise ValueError(f"model: {type(child).__name__} is neither nn.Linear nor a "
                             f"parameter-free activation")
        else:
            acts.append(type(child).__name__)
    if not linears:
        raise ValueError("model: has no nn.Linear layer")
    for i, (a, b) in enumerate(zip(linears, linears[1:])):
        if int(b.in_features) != int(a.out_features):
            # (the model could not run; classifying its widths would describe no map)
            raise ValueError(f"model: Linear layer {i + 2} takes {b.in_features} features, the "
                             f"layer before it gives {a.out_features}")
    return linears, acts


def _classify(widths) -> tuple[str, str]:
    n0 = widths[0]
    hidden = list(widths[1:-1])
    seq = [n0] + hidden
    if all(a >= b for a, b in zip(seq, seq[1:])):
        return "non-augmented", (f"the widths {tuple(seq)} never increase from the input on, so "
                                 f"every transposed weight matrix is injective")
    for i, n in enumerate(hidden):
        if n < n0 and any(m > n for m in hidden[i + 1:]):
            return "bottleneck", (f"hidden layer {i + 1} (width {n}) is narrower than the input "
                                  f"(width {n0}) and a later layer is wider")
    wide = [i + 1 for i, n in enumerate(hidden) if n > min(seq[: i + 1])]
    return "augmented", (f"layer(s) {wide} are wider than a layer before them, without a "
                         f"bottleneck below the input width")


def _numerical_rank(W: np.ndarray, rank_tol: Optional[float]) -> int:
    s = np.linalg.svd(W, compute_uv=False)
    tol = (max(W.shape) * np.finfo(float).eps if rank_tol is None
           else as_positive(rank_tol, "rank_tol")) * (s[0] if s.size else 0.0)
    return int(np.sum(s > tol))


def _weights(lin) -> np.ndarray:
    return lin.weight.detach().cpu().double().numpy()


def _from_widths(widths, ranks, eff, smooth: bool, acts, prefix: str = "") -> ArchitectureClass:
    """The class of a network with layer widths ``widths`` (scalar output last), weight ranks
    ``ranks``, and the widths ``eff`` of its full-rank normal form."""
    kind, why = _classify([*widths[:-1], 1])
    eff_kind, eff_why = _classify(eff)
    deficient = [i + 1 for i, (r, a, b) in enumerate(zip(ranks[:-1], widths[:-2], widths[1:-1]))
                 if r < min(a, b)]
    note = "" if smooth else (f" (the theory assumes smooth activations with φ' > 0; this "
                              f"model uses {sorted(set(acts))})")
    zero = [i + 1 for i, r in enumerate(ranks) if r == 0]
    if zero:
        # A zero weight matrix (a zero-initialised readout, say) makes Φ constant; the width
        # rules below would call a zero readout 'non-augmented': "no critical points".
        return ArchitectureClass(
            "degenerate", tuple(widths), tuple(ranks), tuple(eff), "constant",
            f"{prefix}the weight matrices of layer(s) {zero} are zero, so Φ is constant.{note}",
            _THEORY["constant"], smooth)
    if deficient:
        reason = (f"{prefix}weight matrices of layer(s) {deficient} are rank-deficient (ranks "
                  f"{tuple(ranks)}); the equivalent full-rank network has widths {tuple(eff)} "
                  f"and is {eff_kind}: {eff_why}.{note}")
        return ArchitectureClass("degenerate", tuple(widths), tuple(ranks), tuple(eff), eff_kind,
                                 reason, _THEORY[eff_kind], smooth)
    return ArchitectureClass(kind, tuple(widths), tuple(ranks), tuple(eff), kind,
                             prefix + why + "." + note, _THEORY[kind], smooth)


def _is_neural_de(model) -> bool:
    from .nn._modules import NeuralDDE  # torch is there: model is a torch module

    return isinstance(model, NeuralDDE)


def _neural_ode_class(model, rank_tol: Optional[float]) -> ArchitectureClass:
    """A neural ODE x ↦ λ2(φ_T(E λ1(x))) as the MLP of widths (n₀, dim, dim + augment, 1)."""
    if model.n_delays > 0:
        raise ValueError(
            "model: architecture classes are known for neural ODEs, whose time-T map is a "
            "diffeomorphism of the phase space; a NeuralDDE's time-T map is not a flow on "
            "ℝ^(dim + augment) (its state is a history). For a neural DDE see "
            "model.memory_capacity(): Kτ decides whether it behaves like a neural ODE "
            "(Kuehn & Kuntz, arXiv 2505.07244)")
    n0, dim, m = model.in_features, model.dim, model.state_dim
    r_lift = _numerical_rank(_weights(model.lift), rank_tol)
    # The flow's derivative Dφ_T is invertible, as the D_l of an MLP; the zero padding E of the
    # augmented dimensions is an injective linear "layer" dim → dim + augment. So the gradient
    # ∇Φ = W₁ᵀ Eᵀ Dφ_Tᵀ w₂ has the MLP's structure with widths (n₀, dim, m).
    # Without augmentation the flow keeps the lift's width: one hidden layer, not two.
    hidden = [dim] + ([m] if m > dim else [])
    widths = [n0, *hidden, model.out_features]
    ranks = [r_lift] + ([dim] if m > dim else []) + \
        [_numerical_rank(_weights(model.readout), rank_tol)]
    eff = [n0] + ([r_lift] if r_lift < min(n0, dim) else []) + hidden + [1]
    act = model.config.activation
    smooth = act in ("tanh", "sigmoid", "softplus")
    acts = [] if smooth else [act]
    cls = _from_widths(widths, ranks, eff, True, acts,
                       prefix=f"neural ODE with input width {n0}, lift to {dim} and phase space "
                              f"ℝ^{m}: ")
    if not smooth:   # a ReLU field gives a Lipschitz flow, a homeomorphism but not C¹
        cls = ArchitectureClass(cls.kind, cls.widths, cls.ranks, cls.effective_widths,
                                cls.effective_kind,
                                cls.reason + f" (the theory needs a C¹ vector field; {act} is "
                                             f"only Lipschitz)", cls.theory, False)
    return cls


def architecture_class(model: torch.nn.Module, *, rank_tol: Optional[float] = None
                       ) -> ArchitectureClass:
    """Classify a network by the critical points its input–output map can have.

    Parameters
    ----------
    model : nn.Sequential or delyap.nn.NeuralODE
        An MLP of nn.Linear layers and parameter-free elementwise activations, or a
        :class:`delyap.nn.NeuralODE` (a ``NeuralDDE`` without delays). Scalar output (for
        vector outputs the classification is that of each output component).
    rank_tol : float, optional
        Singular values below rank_tol · σ_max count as zero (default: max(shape) · eps, as
        numpy's matrix_rank).

    Notes
    -----
    A neural ODE x ↦ λ2(φ_T(λ1(x))) is classified as the MLP of widths (n₀, dim, dim +
    augment): the time-T flow φ_T is a diffeomorphism (Dφ_T invertible), so Φ has no critical
    points when the lift does not widen (dim ≤ n₀, no augmentation, λ1 of full rank dim),
    Morse critical points may appear with a phase space wider than the input, and a lift
    narrower than the input followed by augmented dimensions is a bottleneck (Kuehn & Kuntz,
    arXiv:2405.09351). The statement is about the exact flow; a fixed-step solver's map is a
    diffeomorphism too when its step is small against 1/K (:meth:`NeuralDDE.memory_capacity`).
    """
    if isinstance(model, _torch().nn.Module):
        check_finite_parameters(model)
    if _is_neural_de(model):
        return _neural_ode_class(model, rank_tol)
    linears, acts = _mlp_layers(model)
    widths = [int(linears[0].in_features)] + [int(m.out_features) for m in linears]
    if min(widths) < 1:
        # A zero-width layer makes Φ constant (every point critical): no class applies.
        raise ValueError(f"model: layer widths {tuple(widths)} include 0")
    ranks, eff = [], [widths[0]]
    for lin in linears[:-1]:
        W = _weights(lin)
        r = _numerical_rank(W, rank_tol)
        ranks.append(r)
        if r < min(W.shape):
            eff.append(r)        # W = U Vᵀ passes through ℝ^r: an extra (linear) layer
        eff.append(int(W.shape[0]))
    ranks.append(int(np.linalg.matrix_rank(_weights(linears[-1]))))
    eff.append(1)
    smooth = all(a in _SMOOTH_MONOTONE for a in acts)
    return _from_widths(widths, ranks, eff, smooth, acts)


# ----------------------------------------------------------------------------- critical points
@dataclass
class CriticalPoints(Result):
    """Critical points of Φ found in a box.

    Attributes
    ----------
    points : ndarray (m, n₀)
        Locations (deduplicated; points on a degenerate critical manifold come out as several
        points along it).
    values : ndarray (m,)
        Φ at each point.
    hessian_eigenvalues : ndarray (m, n₀)
        Eigenvalues of ∇²Φ, increasing.
    index : ndarray of int (m,)
        Number of negative eigenvalues (0 minimum, n₀ maximum, else a saddle).
    degenerate : ndarray of bool (m,)
        Whether ∇²Φ is singular (an eigenvalue below ``degenerate_tol`` · max(1, max|λ|)).
    gradient_norms : ndarray (m,)
        ‖∇Φ‖ at each point (≤ ``gtol``).
    n_starts : int
    status : int
        0, or 3 (non_finite) when ∇Φ is not finite at some starts (``info["error"]`` says
        where): the search there says nothing, so an empty result would be no answer.
    """

    points: np.ndarray
    values: np.ndarray
    hessian_eigenvalues: np.ndarray
    index: np.ndarray
    degenerate: np.ndarray
    gradient_norms: np.ndarray
    n_starts: int
    status: int = 0
    info: dict[str, Any] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return int(self.points.shape[0])

    def __repr__(self) -> str:
        return (f"CriticalPoints({len(self)} found from {self.n_starts} starts; indices "
                f"{self.index.tolist()}, degenerate {self.degenerate.tolist()})")


def _neural_map(model, starts: np.ndarray):
    """Φ of a delyap.nn NeuralDDE/NeuralODE written in torch operations (twice
    differentiable, vmap-able): the stage loop of :func:`delyap.nn.odeint_dde` with the
    module's vector field, method and steps. Fixed-step modules give their own map exactly;
    adaptive ones replay the step sequence of one forward pass over the starts (the map the
    module computed there, smooth in x because the steps are held fixed)."""
    torch = _torch()
    from .nn._general import builtin_field, fixed_grid, integrate
    from .nn._solve import delay_values

    c = model.config
    grid = None
    if c.method not in ("Euler", "RK4"):
        with torch.no_grad():
            model(torch.as_tensor(starts, dtype=model.W.dtype, device=model.W.device))
        grid = np.asarray(model.last_info["t"], dtype=np.float64)
    else:
        grid = fixed_grid(c.t_final, c.dt)
    tau_vals = delay_values(model.tau)
    field = builtin_field(c.activation, model.W, model.W_delay, model.b, model.W_out,
                          model.w_time, model.W_hidden, model.b_hidden)

    def forward(x):
        h0 = model.initial_state(x)
        return model.readout(integrate(field, h0, model.tau, tau_vals, grid, c.method))

    return forward


def _kinks(model) -> list[str]:
    """The modules (or the NeuralDE activation) of ``model`` known to be non-smooth."""
    if _is_neural_de(model):
        return ["relu"] if model.config.activation == "relu" else []
    kinked = ("Threshold", "Softshrink", "Hardshrink", "MaxPool1d", "MaxPool2d", "MaxPool3d")
    names = [type(m).__name__ for m in model.modules()]
    return sorted({n for n in names if "ReLU" in n or n.startswith("Hard") or n in kinked})


def _scalar_function(model, starts: np.ndarray):
    torch = _torch()
    forward = _neural_map(model, starts) if _is_neural_de(model) else model

    def phi(x):
        out = forward(x.unsqueeze(0))
        if out.numel() != 1:
            raise ValueError(f"model: critical points need a scalar output, got "
                             f"{out.numel()} outputs")
        return out.reshape(())

    return phi, torch.func.vmap(torch.func.grad(phi)), torch.func.vmap(torch.func.hessian(phi))


def _scales(norms: np.ndarray, diag: float) -> tuple[float, float]:
    """Φ's typical gradient norm over the starts (the median; the largest where most starts
    sit on a plateau; the smallest normal number where ∇Φ vanishes at every start) and its
    typical curvature, that gradient over the box's diagonal: the units of the tests."""
    norms = norms[np.isfinite(norms)]
    g = float(np.median(norms)) if norms.size else 0.0
    if not g > 0.0:
        g = float(norms.max()) if norms.size else 0.0
    g = max(g, float(np.finfo(np.float64).tiny))
    return g, g / diag


def critical_points(model: torch.nn.Module, bounds: ArrayLike, *, n_starts: int = 64,
                    seed: int = 0, max_iter: int = 100, gtol: float = 1e-10,
                    dedup_tol: float = 1e-6, degenerate_tol: float = 1e-6,
                    throw: bool = True) -> CriticalPoints:
    """Critical points (∇Φ = 0) of a scalar-output torch model in a box.

    Batched multi-start Levenberg–Marquardt on the residual ∇Φ with Jacobian ∇²Φ
    (``torch.func``): δ = −(H² + μI)⁻¹ H ∇Φ, μ adapted per start (smaller after a step that
    reduces ‖∇Φ‖). Unlike a Newton step it finds maxima, minima and saddles alike and stays
    well defined where H is singular (degenerate points, where it converges linearly).

    Parameters
    ----------
    model : torch.nn.Module
        Any float64 model with scalar output that ``torch.func`` can differentiate twice (an
        MLP from :func:`architecture_class`, or not), or a :class:`delyap.nn.NeuralODE` /
        ``NeuralDDE``: its C++ pass has first derivatives only, so Φ is evaluated by the same
        method in torch operations (:func:`delyap.nn.odeint_dde`) on the module's fixed steps,
        or, for adaptive methods, on the steps of one forward pass over the starts.
    bounds : array (n₀, 2) or (2,)
        Box [lo, hi] per input dimension; starts are uniform in it (seeded) and points found
        outside are dropped.
    n_starts, seed : int
        Number of starts and their seed.
    max_iter : int
        LM iterations per start.
    gtol : float
        Accept a point when ‖∇Φ‖ ≤ gtol · (typical ‖∇Φ‖ at the starts, their median): the
        tests are relative, so scaling Φ or x does not change the answer.
    dedup_tol : float
        Points closer than dedup_tol · (box diagonal), plus four times their location errors
        (each one's Newton step), are merged (the one with the smaller gradient is kept).
    degenerate_tol : float
        Relative threshold on the smallest |eigenvalue| of ∇²Φ for ``degenerate``, against the
        larger of the point's largest |eigenvalue| and Φ's typical curvature (typical ‖∇Φ‖
        over the box diagonal). A point is also reported degenerate when its curvature is not
        resolved: one Newton step on, the Hessian's eigenvalues move by more than 1e-3 of the
        smallest |eigenvalue| (the iteration converges only linearly to a degenerate point, so
        it stops where ∇²Φ is still of the size of its distance from it). ``index`` counts the
        eigenvalues below −degenerate_tol · scale (for a degenerate point, those of its
        non-degenerate directions).
    throw : bool
        True (default): ∇Φ not finite at a start raises :class:`delyap.IntegrationError`;
        False: the result has ``status`` 3 (non_finite). Parameters with NaN or inf raise
        ValueError.
    """
    torch = _torch()
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    params = list(model.parameters())
    if params and params[0].dtype != torch.float64:
        raise TypeError("model: critical points need float64 parameters (model.double())")
    if params and params[0].device.type != "cpu":
        # (the multi-start Newton iteration solves its small systems on the host)
        raise ValueError(f"model: critical points are searched on the CPU, the model is on "
                         f"{params[0].device} (pass a CPU copy: copy.deepcopy(model).cpu())")
    check_finite_parameters(model)
    b = as_float_array(bounds, "bounds", ndim=(1, 2))
    b = b.reshape(1, 2) if b.ndim == 1 else b
    if b.shape[1] != 2 or np.any(~(b[:, 0] < b[:, 1])):
        raise ValueError(f"bounds: expected rows [lo, hi] with lo < hi, got shape {b.shape}")
    with np.errstate(over="ignore"):
        widths = b[:, 1] - b[:, 0]
    if not np.all(np.isfinite(widths)):
        raise ValueError(f"bounds: the box's widths overflow (got {b.tolist()})")
    d = b.shape[0]
    n = as_count(n_starts, "n_starts")
    iters = as_count(max_iter, "max_iter")
    gtol = as_positive(gtol, "gtol")
    dedup_tol = as_positive(dedup_tol, "dedup_tol")
    degenerate_tol = as_positive(degenerate_tol, "degenerate_tol")
    diag = float(np.linalg.norm(widths))
    rng = np.random.default_rng(as_count(seed, "seed", minimum=0))
    starts = b[:, 0] + widths * rng.random((n, d))
    kinks = _kinks(model)
    if kinks:
        warnings.warn(f"model: {', '.join(kinks)} make Φ piecewise smooth: its Hessian vanishes "
                      "or jumps on the pieces, so critical points on a flat piece come back "
                      "degenerate and those at a kink are not found (info['non_smooth'])",
                      stacklevel=2)
    phi, grad, hess = _scalar_function(model, starts)
    with torch.no_grad():
        try:
            x = torch.as_tensor(starts, dtype=torch.float64)
            g = grad(x)
        except RuntimeError as err:  # the model's input width differs from the bounds'
            raise ValueError(f"bounds: {d} input dimensions do not fit the model ({err})") from None
        bad_starts = ~torch.isfinite(g).all(dim=1)
        # (a NaN gradient fails every test below, so its start would drop out silently)
        gscale, curv = _scales(g[~bad_starts].norm(dim=1).numpy(), diag)
        mu = torch.full((n,), 1e-3 * curv * curv, dtype=torch.float64)
        eye = torch.eye(d, dtype=torch.float64)
        # Starts that leave the box by half its width are followed no further (their points
        # would be dropped; on saturated activations they drift outwards, where ∇Φ → 0).
        lo = torch.as_tensor(b[:, 0] - 0.5 * (b[:, 1] - b[:, 0]))
        hi = torch.as_tensor(b[:, 1] + 0.5 * (b[:, 1] - b[:, 0]))

        def inside(z):
            return torch.all((z >= lo) & (z <= hi), dim=1)

        gn = g.norm(dim=1)
        for _ in range(iters):
            # Active starts: not converged, and still able to move (μ not exploded: a start
            # stuck at a positive minimum of ‖∇Φ‖, or drifting into a flat saturated region).
            active = (gn > gtol * gscale) & (mu < 1e12 * curv * curv) & inside(x)
            idx = torch.nonzero(active).reshape(-1)
            if idx.numel() == 0:
                break
            xa, ga, ma = x[idx], g[idx], mu[idx]
            H = hess(xa)
            A = (H @ H + ma[:, None, None] * eye).numpy()
            # numpy for the small batched solve: torch's costs ~10 ms a call on busy cores.
            rhs = (H @ ga.unsqueeze(-1)).numpy()
            x_new = xa - torch.as_tensor(np.linalg.solve(A, rhs)[..., 0])
            g_new = grad(x_new)
            gn_new = g_new.norm(dim=1)
            ok = gn_new < gn[idx]
            x[idx] = torch.where(ok[:, None], x_new, xa)
            g[idx] = torch.where(ok[:, None], g_new, ga)
            gn[idx] = torch.where(ok, gn_new, gn[idx])
            mu[idx] = torch.where(ok, ma / 3, ma * 4).clamp(1e-300, 1e300)
        xs = x.numpy()
        gns = gn.numpy()
    keep = (gns <= gtol * gscale) & np.all((xs >= b[:, 0]) & (xs <= b[:, 1]), axis=1)
    xs, gns, gx = xs[keep], gns[keep], g.numpy()[keep]  # g: ∇Φ at x, kept by the iteration
    with torch.no_grad():
        tx = torch.as_tensor(xs, dtype=torch.float64).reshape(-1, d)
        Hx = hess(tx).numpy() if len(xs) else np.zeros((0, d, d))
    # Each point's location error, estimated by its Newton step pinv(H)∇Φ: ≈ 1e-10 of the
    # box at a non-degenerate point, but at a degenerate one (where the iteration converges
    # only linearly) as large as the distance to the true point.
    newton = (np.einsum("nij,nj->ni", np.linalg.pinv(Hx, hermitian=True), gx) if len(xs)
              else np.zeros((0, d)))
    step = np.linalg.norm(newton, axis=1)
    # Deduplicate: best gradient first; a point joins an earlier one within the radius, widened
    # by both location errors (copies of a degenerate point stop apart by about that much).
    radius = dedup_tol * diag
    chosen: list[int] = []
    for i in np.argsort(gns):
        if all(np.linalg.norm(xs[i] - xs[j]) > radius + 4.0 * (step[i] + step[j])
               for j in chosen):
            chosen.append(int(i))
    pts = xs[chosen].reshape(-1, d)
    with torch.no_grad():
        tp = torch.as_tensor(pts, dtype=torch.float64)
        vals = (torch.stack([phi(p) for p in tp]).numpy() if len(pts) else np.zeros(0))
        moved = torch.as_tensor(pts - newton[chosen].reshape(-1, d), dtype=torch.float64)
        H_moved = hess(moved).numpy() if len(pts) else np.zeros((0, d, d))
    H = Hx[chosen].reshape(-1, d, d)
    ev = np.linalg.eigvalsh(0.5 * (H + H.transpose(0, 2, 1))) if len(pts) else np.zeros((0, d))
    ev_moved = (np.linalg.eigvalsh(0.5 * (H_moved + H_moved.transpose(0, 2, 1))) if len(pts)
                else np.zeros((0, d)))
    # Curvature is measured against the larger of the point's own and Φ's typical curvature
    # (|∇Φ| over the box), so that the tests do not depend on the scale of Φ or of x.
    scale = np.maximum(curv, np.abs(ev).max(axis=1)) if len(pts) else np.zeros(0)
    small = np.abs(ev).min(axis=1) if len(pts) else np.zeros(0)
    # Degenerate: a vanishing eigenvalue, or curvature that the point's location error leaves
    # unresolved (one Newton step on, the eigenvalues move by more than 1e-3 of the smallest:
    # at a non-degenerate point they move by ~1e-10).
    unresolved = (np.abs(ev_moved - ev).max(axis=1) > 1e-3 * small) if len(pts) else \
        np.zeros(0, bool)
    degenerate = ((small <= degenerate_tol * scale) | unresolved) if len(pts) else \
        np.zeros(0, bool)
    index = np.sum(ev < -degenerate_tol * scale[:, None], axis=1) if len(pts) else \
        np.zeros(0, int)
    order = np.lexsort(pts.T[::-1]) if len(pts) else np.zeros(0, int)
    out = CriticalPoints(points=pts[order], values=np.asarray(vals)[order],
                         hessian_eigenvalues=ev[order], index=np.asarray(index)[order],
                         degenerate=np.asarray(degenerate)[order],
                         gradient_norms=gns[chosen][order] if len(pts) else np.zeros(0),
                         n_starts=n, info={"converged_starts": int(keep.sum()),
                                           "gradient_scale": gscale, "curvature_scale": curv,
                                           "bounds": b, "non_smooth": kinks})
    n_bad = int(bad_starts.sum())
    if n_bad:
        first = starts[int(torch.nonzero(bad_starts)[0])]
        out.status = 3
        out.info["error"] = (f"∇Φ is not finite at {n_bad} of {n} starts (the first at "
                             f"x = {first.tolist()})")
    out._origin = "critical_points"
    raise_if_failed(out, throw)
    return out

