"""The table of bad calls to prefbench_lib.nash and the error each one gets (run by tests/test_nash.py).

It lived in the module's __all__ until issue 25: a test table is the tests' data, not the library's API.
05_nash keeps a few of these rows as a local example.
"""
import torch
from torch import Tensor

_GAME = torch.tensor([[0.5, 0.2, 0.7], [0.8, 0.5, 0.4], [0.3, 0.6, 0.5]], dtype=torch.float64)  # a valid 3-action game
_NOT_A_GAME = torch.tensor([[0.5, 0.8], [0.3, 0.5]], dtype=torch.float64)  # P + P^T != 1
_UNIFORM = torch.full((3,), 1 / 3, dtype=torch.float64)
def _f64(*v: float) -> Tensor: return torch.tensor(v, dtype=torch.float64)

ARGUMENT_ERRORS: list[tuple[str, dict, str]] = [  # bad calls and the error each one gets: (function, keyword arguments, part of the message)
    ("run_dynamics", dict(P=_NOT_A_GAME, algorithm="omd"), "P must satisfy P + P^T = 1 (within 1e-06), got P[0, 1] + P[1, 0] = 1.1"),
    ("run_dynamics", dict(P=3 * _NOT_A_GAME, algorithm="omd"), "P must be in [0.0, 1.0], got an entry of P equal to 1.5"),
    ("nash_equilibrium", dict(P=_NOT_A_GAME), "P must satisfy"),
    ("regularized_nash", dict(P=_NOT_A_GAME, beta=0.1), "P must satisfy"),
    ("run_dynamics", dict(P=_GAME, algorithm="omd", ref=_f64(0.5, 0.5, 0.0)), "ref must be > 0 everywhere, got ref[2] = 0"),
    ("run_dynamics", dict(P=_GAME, algorithm="omd", ref=_f64(0.5, 0.5, 0.5)), "ref must sum to 1"),
    ("duality_gap", dict(pi=_UNIFORM, P=_GAME, ref=_f64(0.1, 0.2, 0.3), beta=0.1), "ref must sum to 1"),
    ("duality_gap", dict(pi=_f64(0.5, 0.5, 0.5), P=_GAME), "pi must sum to 1"),
    ("run_dynamics", dict(P=_GAME, algorithm="omd", beta=-0.1), "beta must be in [0.0, inf), got beta=-0.1"),
    ("run_dynamics", dict(P=_GAME, algorithm="omd", beta=_f64(0.1, -1.0)), "got an entry of beta equal to -1"),
    ("duality_gap", dict(pi=_UNIFORM, P=_GAME, ref=_UNIFORM, beta=-1.0), "beta must be in [0.0, inf)"),
    ("run_dynamics", dict(P=_GAME, algorithm="omd", eta=0.0), "eta must be in (0.0, inf), got eta=0.0"),
    ("run_dynamics", dict(P=_GAME, algorithm="omd", eta=-1.0), "eta must be in (0.0, inf), got eta=-1.0"),
    ("run_dynamics", dict(P=_GAME, algorithm="omd", eta=_f64(0.1, 0.0)), "eta must be in (0.0, inf), got an entry of eta equal to 0"),
    ("run_dynamics", dict(P=_GAME, algorithm="sgd"), "algorithm must be one of omd, nash_md, egpo, optimistic, hedge, spo, mnpo, nash_md_pg; got algorithm='sgd'"),
    ("run_dynamics", dict(P=_GAME, algorithm="hedge", beta=0.1), "algorithm='hedge' has no reference term, so beta must be 0, got beta=0.1"),
    ("run_dynamics", dict(P=_GAME.expand(2, 3, 3), algorithm="hedge", beta=_f64(0.0, 0.2)), "so beta must be 0, got beta=[0.0, 0.2]"),
    ("run_dynamics", dict(P=_GAME, algorithm="omd", steps=-1), "steps must be an integer >= 0, got steps=-1"),
    ("run_dynamics", dict(P=_GAME, algorithm="omd", samples=0), "samples must be an integer >= 1, got samples=0"),
    ("run_dynamics", dict(P=_GAME, algorithm="mnpo", lambdas=[0.5, 0.6]), "lambdas must sum to 1"),
    ("run_dynamics", dict(P=_GAME, algorithm="mnpo", lambda_=[1.0]), "algorithm='mnpo' takes no hyperparameter(s) lambda_; its hyperparameters: lambdas"),
    ("run_dynamics", dict(P=_GAME, algorithm="omd", lambdas=[1.0]), "algorithm='omd' takes no hyperparameter(s) lambdas"),
    ("run_dynamics", dict(P=_GAME.expand(2, 3, 3), algorithm="omd", eta=torch.ones(3)), "eta must be a number or a [B] tensor, one value per run, with B = 2"),
    ("run_dynamics", dict(P=_GAME, algorithm="omd", eta=_f64(0.1, 0.2)), "with B = 1 (the games and policies are not batched: for a sweep, give P as [B, K, K])"),
    ("run_dynamics", dict(P=_GAME, algorithm="omd", beta=_f64(0.1)[:, None]), "got beta of shape (1, 1)"),
    ("run_dynamics", dict(P=_GAME.expand(2, 3, 3), algorithm="omd", ref=_UNIFORM.expand(3, 3)), "P, ref disagree on the batch size: P has 2, ref has 3"),
    ("run_dynamics", dict(P=_GAME, algorithm="omd", seed=-1), "seed must be an integer >= 0, got seed=-1"),
    ("run_dynamics", dict(P=_GAME.long(), algorithm="omd"), "P must be a floating-point tensor, got dtype torch.int64"),
    ("win_rates", dict(pi=_f64(0.5, 0.5), P=_GAME), "pi must have shape [K] or [B, K] with K = 3, got shape (2,)"),
    ("best_response", dict(pi=_UNIFORM, P=_GAME, beta="0.1"), "beta must be a number (or a tensor of numbers), got str"),
    ("sampled_win_rates", dict(pi=_UNIFORM[None], P=_GAME[None], n=2.5), "n must be an integer >= 1, got n=2.5"),
    ("get_algorithm", dict(name="sgd"), "name must be one of"),
    ("regularized_nash", dict(P=_GAME, ref=_UNIFORM, beta=0.0), "beta must be in (0.0, inf), got beta=0.0"),
    ("nash_equilibrium", dict(P=_GAME, method="simplex"), "method must be one of ipm, scipy; got method='simplex'"),
    ("nash_equilibrium", dict(P=_GAME, tol=-1.0), "tol must be a finite number > 0, got tol=-1.0"),
    ("regularized_nash", dict(P=_GAME, max_iter=2.5), "max_iter must be an integer >= 1, got max_iter=2.5"),
    ("preference_matrix", dict(kind="tournament", K=4), "kind must be one of rps, cyclic, random, bt, mixture, embedding; got kind='tournament'"),
    ("preference_matrix", dict(kind="bt", K=1), "K must be an integer >= 2, got K=1"),
    ("preference_matrix", dict(kind="cyclic", K=4, scale=2.0), "kind='cyclic' takes no argument(s) scale; its parameters: margin"),
    ("rps_game", dict(K=4), "the 'rps' game has K = 3 actions, got K=4"),
    ("rps_game", dict(margins="abc"), "margins must be Tensor or list or tuple or ndarray, got str"),
    ("rps_game", dict(dtype="float64"), "dtype must be one of torch.float64, torch.float32, torch.bfloat16, torch.float16; got dtype='float64'"),
    ("random_game", dict(K=4, device="bogus"), "device must name a torch device, got device='bogus'"),
    ("bt_game", dict(K=3, scores=[0.0, 1.0]), "scores must have shape [K] = (3,), got shape (2,)"),
    ("cyclic_game", dict(K=5, margin=0.6), "margin must be in [0.0, 0.5], got margin=0.6"),
    ("mixture_game", dict(K=3, scores=[[0.0, 1.0, 2.0]], weights=[0.5, 0.5]), "weights must have shape [G], one weight per group of scores, got shape (2,)"),
    ("gpm_game", dict(K=4, dim=3), "dim must be even (2-d blocks), got dim=3"),
    ("random_game", dict(K=4, seed=-2), "seed must be an integer >= 0, got seed=-2"),
    ("rps_game", dict(margins=(0.5, 0.5)), "margins must have shape (3,) = (m1, m2, m3), got shape (2,)"),
    ("run_dynamics", dict(P=_GAME, algorithm="omd", threads=0), "threads must be an integer >= 1, got threads=0"),
    ("regularized_nash", dict(P=_GAME, warm_start=1), "warm_start must be bool, got int"),
]
