"""Memory capacity of neural DDEs (Kuehn & Kuntz, arXiv 2505.07244), at laptop size.

A non-augmented 1-D neural DDE  x ↦ λ2(h(T)),  h' = W_out tanh(W h + W_1 h(t − τ) + b),
h = λ1(x) on [−τ, 0], is trained to fit x ↦ x² on [−1, 1]. The time-T map of a 1-D ODE is
monotone, and a monotone map is at least 1/2 away from x² in the sup norm (x² takes the values
1, 0, 1 at −1, 0, 1), so while the delay adds little (small Kτ, with K the vector field's
Lipschitz constant) the error stays near that floor; once Kτ is large enough the delayed term
lets the map turn and the error falls. K is held below a cap during training (W_out is
rescaled after each step so that the spectral bound K_upper ≤ K_max), and the sweep runs over τ
and K_max. An augmented model (one extra zero dimension) fits at every Kτ, for contrast.

Run:  python examples/neural_memory_capacity.py   (about a minute; writes
docs/neural_memory_capacity.png and prints the table; ``--device cuda`` trains the models on a
GPU through delyap.nn's torch backend)
"""
from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import torch

from delyap.nn import NeuralDDE

FLOOR = 0.5  # sup-distance from x² to any monotone map on [−1, 1]


def train(tau: float, k_max: float, augment: int, steps: int, seed: int = 0,
          device: str = "cpu"):
    """Train a 1-D neural DDE with K_upper ≤ k_max; returns (sup error, final K_upper·τ)."""
    torch.manual_seed(seed)
    dt = min(0.05, tau)  # RK4 steps never exceed the delay
    model = NeuralDDE(1, 1, dim=1, hidden=32, tau=tau, method="RK4", dt=dt, t_final=1.0,
                      augment=augment).double().to(device)
    # λ1 and λ2 keep unit slopes (their offsets train): with trainable slopes, gradient descent
    # from a random start falls into the symmetric saddle where λ1 or λ2 shrinks to zero and the
    # model outputs the mean of x², for every model alike, which would hide the effect of Kτ.
    with torch.no_grad():
        model.lift.weight.fill_(1.0)
        model.readout.weight.fill_(1.0)
    model.lift.weight.requires_grad_(False)
    model.readout.weight.requires_grad_(False)
    x = torch.linspace(-1, 1, 65, dtype=torch.float64, device=device).unsqueeze(1)
    y = x ** 2
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=0.02)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)

    def cap() -> float:
        k = model.memory_capacity(n_samples=1).K_upper
        if k > k_max:  # K_upper is linear in W_out: rescale it onto the cap
            with torch.no_grad():
                model.W_out.mul_(k_max / k)
            k = k_max
        return k

    cap()
    for _ in range(steps):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        sched.step()
        k = cap()
    with torch.no_grad():
        xs = torch.linspace(-1, 1, 401, dtype=torch.float64, device=device).unsqueeze(1)
        err = float((model(xs) - xs ** 2).abs().max())
    return err, k * tau


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=300, help="Adam steps per model")
    ap.add_argument("--out", default="docs/neural_memory_capacity.png")
    ap.add_argument("--device", default="cpu",
                    help="torch device of the models (cpu: delyap's C++ core; cuda: its torch "
                    "backend on the GPU)")
    args = ap.parse_args()
    taus = [0.05, 0.2, 0.5, 1.0]
    k_caps = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0]
    t0 = time.perf_counter()
    rows = []
    print(f"{'tau':>6} {'K_max':>6} {'K*tau':>7} {'sup err (1-D)':>14} {'sup err (aug)':>14}")
    for tau in taus:
        for k in k_caps:
            err, ktau = train(tau, k, 0, args.steps, device=args.device)
            aug = float("nan")
            if k in (k_caps[0], k_caps[-1]):  # the augmented contrast at both ends of the K range
                aug, _ = train(tau, k, 1, args.steps, device=args.device)
            rows.append((tau, k, ktau, err, aug))
            print(f"{tau:6.2f} {k:6.2f} {ktau:7.3f} {err:14.4f} {aug:14.4f}")
    print(f"{len(rows)} sweeps in {time.perf_counter() - t0:.1f} s")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    sc = ax.scatter([r[2] for r in rows], [r[3] for r in rows], c=[math.log10(r[0]) for r in rows],
                    cmap="viridis", label="1-D neural DDE")
    aug = [r for r in rows if not math.isnan(r[4])]
    ax.scatter([r[2] for r in aug], [r[4] for r in aug], marker="x", color="crimson",
               label="augmented (dim 1 + 1)")
    ax.axhline(FLOOR, color="grey", ls="--", lw=1, label="monotone-map floor 1/2")
    ax.axvline(1 / math.e, color="k", ls=":", lw=1, label="Kτ = 1/e")
    ax.set_xscale("log")
    ax.set_xlabel("Kτ (K: spectral Lipschitz bound, held ≤ K_max in training)")
    ax.set_ylabel("sup |model(x) − x²| on [−1, 1]")
    ax.set_title("Fitting x ↦ x² with a non-augmented 1-D neural DDE")
    fig.colorbar(sc, ax=ax, label="log10 τ")
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=120)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
