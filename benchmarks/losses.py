"""Time per call of every loss in prefbench_lib.losses against a plain formula, B = 65,536.

The plain formula is what a careful user would write inline (as TRL's trainer does): the loss
and the two implicit rewards, no validation, in its numerically stable form (DiscoPOP's m e^{-z}
as exp(log sigma(z/tau) - z), ORPO's log(1 - e^a) as log1mexp), so the ratio measures what
prefbench adds: input checks (shapes and ranges; per input tensor one scan: log-probs <= 0 and not NaN, lengths
positive whole numbers; one finiteness check of the losses) and upcasting. The "checks off" column is the same call
inside `value_checks(False)`, as the labs' hot loops and lm_train's training steps make it: the data scans skipped.
The literal DiscoPOP formula is also run, to count its NaNs. Both run in the same process, in alternating
blocks; each side's time is its best block median (see _common.interleaved_medians).
Run: .venv/bin/python benchmarks/losses.py [--device cuda] [--B 65536]
Last lines: max_ratio_vs_plain_checks_off=<worst ratio with the data scans off>, max_ratio_vs_plain=<worst loss's ratio>.
"""
import argparse
import math

import torch
import torch.nn.functional as F
from _common import interleaved_medians, stable_allocator

from prefbench_lib.core import get_device, value_checks
from prefbench_lib.losses import EXAMPLE_HPARAMS as HP, LOSSES, Pair

ls = F.logsigmoid


def plain(name, pc, pr, rc, rr, lc, lr, beta):
    "The formula written inline, with TRL-style rewards, at the hyperparameters in EXAMPLE_HPARAMS."
    rho_c, rho_r = pc - rc, pr - rr
    d = rho_c - rho_r
    h = beta * d
    hp = HP.get(name, {})
    eps = hp.get("label_smoothing", 0.0)
    if name == "sigmoid": loss = -ls(h)
    elif name == "cdpo": loss = -(1 - eps) * ls(h) - eps * ls(-h)
    elif name == "robust": loss = (-(1 - eps) * ls(h) + eps * ls(-h)) / (1 - 2 * eps)
    elif name == "soft_dpo": loss = -(hp["p"] * ls(h) + (1 - hp["p"]) * ls(-h))
    elif name == "sigmoid_norm": loss = -ls(beta * (rho_c / lc - rho_r / lr))
    elif name == "hinge": loss = torch.relu(1 - h)
    elif name == "ipo": loss = (rho_c / lc - rho_r / lr - 1 / (2 * beta)) ** 2
    elif name == "sppo_hard": loss = (rho_c - 0.5 / beta) ** 2 + (rho_r + 0.5 / beta) ** 2
    elif name == "exo_pair": loss = torch.sigmoid(h) * (ls(h) - math.log1p(-eps)) + torch.sigmoid(-h) * (ls(-h) - math.log(eps))
    elif name == "nca_pair": loss = -ls(beta * rho_c) - 0.5 * ls(-beta * rho_c) - 0.5 * ls(-beta * rho_r)
    elif name == "bco_pair": loss = -ls(beta * rho_c - hp["reward_shift"]) - ls(-(beta * rho_r - hp["reward_shift"]))
    elif name in ("aot", "aot_unpaired"):
        q = (torch.sort(pc - pr).values - torch.sort(rc - rr).values if name == "aot"
             else torch.sort(rho_c).values - torch.sort(rho_r).values)
        loss = -(1 - eps) * ls(beta * q) - eps * ls(-beta * q)
    elif name == "apo_zero": loss = 1 - torch.sigmoid(beta * rho_c) + torch.sigmoid(beta * rho_r)
    elif name == "apo_down": loss = torch.sigmoid(beta * rho_c) + 1 - torch.sigmoid(h)
    elif name == "discopop": loss = torch.sigmoid(-h / 0.05) * -ls(h) + torch.exp(ls(h / 0.05) - h)
    elif name == "simpo":
        ac, ar = pc / lc, pr / lr
        return -ls(beta * (ac - ar) - 0.5 * beta), (beta * ac).detach(), (beta * ar).detach()
    elif name == "orpo":
        ac, ar = pc / lc, pr / lr
        l1me = lambda a: torch.where(a > -math.log(2), torch.log(-torch.expm1(a)), torch.log1p(-torch.exp(a)))
        lo = (ac - ar) - (l1me(ac) - l1me(ar))
        return -ac - 0.1 * ls(lo), (beta * ac).detach(), (beta * ar).detach()
    elif name == "npo": loss = 2 / beta * F.softplus(beta * rho_r)
    elif name == "sigmoid_attenuated":
        c, r = pc - hp["gamma"] * rc, pr - hp["gamma"] * rr
        return -ls(beta * (c - r)), (beta * c).detach(), (beta * r).detach()
    elif name == "dpop": loss = -ls(beta * (d - hp["lambda_"] * torch.relu(-rho_c)))
    elif name == "chipo":
        phi_c, phi_r = capped_expm1(rho_c) + rho_c, capped_expm1(rho_r) + rho_r
        m = hp["r_max"]
        return -ls((beta * (phi_c - phi_r)).clamp(-2 * m, 2 * m)), (beta * phi_c).detach(), (beta * phi_r).detach()
    elif name in ("cpo", "cpo_hinge", "cpo_ipo"):
        nll = hp["cpo_alpha"] * -pc / lc.mean()
        if name == "cpo_ipo":
            ac, ar = pc / lc, pr / lr
            return (ac - ar - 1 / (2 * beta)) ** 2 + nll, (beta * ac).detach(), (beta * ar).detach()
        hs = beta * (pc - pr)
        loss = (-(1 - eps) * ls(hs) - eps * ls(-hs) if name == "cpo" else torch.relu(1 - hs)) + nll
        return loss, (beta * pc).detach(), (beta * pr).detach()
    elif name == "alphapo":
        al = hp["alpha"]
        r_c, r_r = -capped_expm1(-al * pc / lc) / al, -capped_expm1(-al * pr / lr) / al
        return -ls(beta * (r_c - r_r) - hp["gamma"]), (beta * r_c).detach(), (beta * r_r).detach()
    else: raise KeyError(name)
    return loss, (beta * rho_c).detach(), (beta * rho_r).detach()


def capped_expm1(x, cap=30.0):
    "e^x - 1 up to the cap, its tangent line beyond: the stable form (a plain exp overflows float32 at x = 89)."
    e = torch.expm1(x.clamp(max=cap))
    return torch.where(x > cap, (e + 1) * (x - cap) + e, e)



def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--B", type=int, default=65_536); ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--device", default=None)
    a = ap.parse_args()
    dev = get_device(a.device)
    g = torch.Generator().manual_seed(0)
    pc, pr, rc, rr = (-(torch.rand(a.B, generator=g) * 200 + 1)).to(dev), *( -(torch.rand(3, a.B, generator=g) * 200 + 1)).to(dev)
    lc, lr = (torch.randint(1, 500, (2, a.B), generator=g).float()).to(dev)
    beta = 0.5
    names = {}
    for n, fn in LOSSES.items(): names.setdefault(fn, n)  # one name per distinct loss
    print(f"device={dev} B={a.B} reps={a.reps} (best block median, blocks interleaved); {stable_allocator()}")
    print(f"{'loss':>14} {'plain us':>10} {'prefbench us':>13} {'ratio':>7} {'checks off us':>14} {'ratio':>7}")
    worst = worst_off = 0.0
    for name in names.values():
        ours = lambda: LOSSES[name](Pair(pc, pr, rc, rr, chosen_lengths=lc, rejected_lengths=lr), beta=beta, **HP.get(name, {}))
        ref = lambda: plain(name, pc, pr, rc, rr, lc, lr, beta)
        def off(ours=ours):
            with value_checks(False): return ours()  # as the labs' hot loops and lm_train's steps call it
        got = ours().losses
        torch.testing.assert_close(got, ref()[0], rtol=1e-4, atol=1e-4)  # the same thing is being timed
        if name == "discopop":  # the formula as printed, m e^{-z}: 0 * inf for very negative margins
            h = beta * ((pc - rc) - (pr - rr)); m = torch.sigmoid(h / 0.05)
            literal = (1 - m) * -ls(h) + m * torch.exp(-h)
            print(f"{'':>14} (literal DiscoPOP formula: {int(torch.isnan(literal).sum())} NaN of {a.B}; prefbench {int(torch.isnan(got).sum())})")
        t = interleaved_medians({"plain": ref, "prefbench": ours, "off": off}, dev, a.reps)
        r, o, f = t["plain"], t["prefbench"], t["off"]
        worst, worst_off = max(worst, o / r), max(worst_off, f / r)
        print(f"{name:>14} {1e6 * r:10.1f} {1e6 * o:13.1f} {o / r:7.2f} {1e6 * f:14.1f} {f / r:7.2f}")
    print(f"max_ratio_vs_plain_checks_off={worst_off:.2f}")
    print(f"max_ratio_vs_plain={worst:.2f}")


if __name__ == "__main__": main()
