"""devinterp's side of ``compare_devinterp.py``; runs in devinterp's own environment.

Never imported by the project (it needs torch and devinterp 2.x). Reads the deep linear
network's data and w* from an ``.npz`` file given as the first argument, then answers
one request per line on stdin (a JSON object with ``seed`` and optional overrides of the
README settings) with one JSON line on stdout: devinterp's λ̂ and the wall seconds of
its ``llc()`` call (imports and data loading excluded, paid once per process).

README settings (devinterp 2.x quick start): SGLD lr 1e-3, n_beta 30, 4 chains × 200
draws, batch 32, no localisation, no burn-in. The loss is the per-datum Gaussian NLL
without its constant, ½‖y − W_L⋯W_1 x‖² (σ = 1), the project's L_n up to a constant,
so λ̂ is on the same scale. devinterp's sampler is written for language models: every
datum is one "sequence" [x | y] and the per-datum loss is repeated over its positions,
whose mean devinterp takes.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
import torch
from datasets import Dataset
from devinterp.slt.llc import llc

README = {
    "lr": 1e-3,
    "n_beta": 30.0,
    "num_chains": 4,
    "num_draws": 200,
    "batch_size": 32,
    "localization": 0.0,
    "num_burnin_steps": 0,
}


class DLN(torch.nn.Module):
    def __init__(self, layers):
        super().__init__()
        self.layers = torch.nn.ParameterList(
            [torch.nn.Parameter(torch.tensor(w, dtype=torch.float32)) for w in layers]
        )

    def forward(self, x):
        for w in self.layers:
            x = x @ w.T
        return x


def main() -> None:
    torch.set_num_threads(1)
    data = np.load(sys.argv[1])
    x, y = data["x"], data["y"]
    layers = [data[f"w{i}"] for i in range(int(data["num_layers"]))]
    d_in = x.shape[1]
    packed = np.concatenate([x, y], axis=1).astype(np.float32)
    dataset = Dataset.from_dict({"input_ids": packed}).with_format("torch")

    def loss_fn(model, seq):
        xb, yb = seq[:, :d_in].float(), seq[:, d_in:].float()
        per_datum = 0.5 * ((yb - model(xb)) ** 2).sum(-1)
        return per_datum[:, None].expand(-1, seq.shape[1] - 1)

    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        settings = {**README, **req.get("overrides", {})}
        model = DLN(layers)
        torch.manual_seed(req["seed"])
        t0 = time.perf_counter()
        out = llc(
            model,
            dataset,
            {},
            loss_fn=loss_fn,
            init_seed=req["seed"],
            device="cpu",
            **settings,
        )
        seconds = time.perf_counter() - t0
        value = float(out["llc_mean"])
        print(
            json.dumps({"seed": req["seed"], "llc": value, "seconds": seconds}),
            flush=True,
        )


if __name__ == "__main__":
    main()
