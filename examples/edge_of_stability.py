"""Edge of stability (Cohen et al. 2021) in a few seconds on a CPU.

Full-batch GD on a small tanh MLP (MSE, synthetic 2-D regression): the sharpness λ_max of the
loss Hessian rises ("progressive sharpening") until it reaches 2/η, then hovers there while the
loss keeps falling, non-monotonically. The gradient flow from the same initialisation shows
where GD stops following it.

    python3 examples/edge_of_stability.py [--out eos.png]
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from delyap import sgd


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lr", type=float, default=0.15)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default="edge_of_stability.png", help="figure (needs matplotlib)")
    ap.add_argument("--csv", default=None)
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    X = torch.randn(64, 2, dtype=torch.float64)
    Y = torch.sin(2 * X[:, :1]) * torch.cos(1.5 * X[:, 1:])
    net = torch.nn.Sequential(torch.nn.Linear(2, 32), torch.nn.Tanh(), torch.nn.Linear(32, 32),
                              torch.nn.Tanh(), torch.nn.Linear(32, 1)).double()
    crit = torch.nn.MSELoss()

    # The gradient-flow reference from the same initialisation (before training moves it).
    flow = sgd.gradient_flow(net, X, Y, args.lr, min(args.steps, 300), loss=crit,
                             threshold=0.1)

    opt = torch.optim.SGD(net.parameters(), lr=args.lr)
    # monitor.backward(loss, opt) in place of loss.backward(): every 10th step (from step 0)
    # the record's Hessian-vector products reuse the step's own gradient graph.
    mon = sgd.SharpnessMonitor(net, X, Y, every=10, loss=crit, smallest=False)
    with mon.attach(opt):
        for _ in range(args.steps):
            opt.zero_grad()
            mon.backward(crit(net(X), Y), opt)
            opt.step()
    mon.record(opt)  # the final point

    r = mon.records
    edge = 2 / args.lr
    final = r["sharpness"][len(r["sharpness"]) * 2 // 3:]
    first = int(np.argmax(r["sharpness"] >= 0.95 * edge))
    print(f"2/η = {edge:.4g}; sharpness {r['sharpness'][0]:.4g} at step 0, reaches 95 % of 2/η "
          f"at step {r['step'][first]}, final third {final.mean():.4g} ± {final.std():.2g} "
          f"({100 * (final.mean() / edge - 1):+.1f} % of 2/η)")
    print(f"loss {r['loss'][0]:.4g} → {r['loss'][-1]:.4g}; "
          f"{int(np.sum(np.diff(r['loss']) > 0))} of {len(r['loss']) - 1} records went up")
    print(f"GD left the gradient flow (distance > {flow.threshold:g}) at step "
          f"{flow.departure_step}; mean HVPs per monitor call {r['hvps'].mean():.2f}, max "
          f"residual / sharpness {np.max(r['residual'] / r['sharpness']):.1e}")
    if args.csv:
        mon.to_csv(args.csv)
    try:
        mon.plot(args.out)
        print(f"figure: {args.out}")
    except ImportError as err:
        print(f"no figure ({err})")


if __name__ == "__main__":
    main()
