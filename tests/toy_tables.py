"""Tables the toy tests run (issue 25: test tables live here, not in prefbench_lib.toy's `__all__`)."""
import torch

# run_bandit keyword arguments -> a fragment of the ValueError they raise (03_toy_bandit shows a few of them)
ARGUMENT_ERRORS: list[tuple[dict, str]] = [
    (dict(algorithms="dpoo"), "algorithms holds an unknown algorithm name='dpoo'; known: sft, sft_push_down, rwr, reinforce, ppo, any pairwise rule (sigmoid, ipo"),
    (dict(algorithms=3), "algorithms must hold names of rules (strings), got 3"),
    (dict(algorithms="ppo_no_neg"), "unknown algorithm name='ppo_no_neg'"),  # only a pairwise rule has a negative gradient to drop
    (dict(algorithms="sft_no_neg"), "unknown algorithm name='sft_no_neg'"),
    (dict(algorithms=[]), "algorithms must not be empty"),
    (dict(algorithms=["sft", "sft"]), "algorithms has duplicates"),
    (dict(steps=0), "steps must be an integer >= 1, got steps=0"),
    (dict(steps=2.5), "steps must be an integer >= 1"),
    (dict(seeds=0), "seeds must be an integer >= 1"),
    (dict(seeds=[1, -2]), "seeds must be an integer >= 0, got seeds=-2"),
    (dict(reward_center=-0.5), "reward_center must be in [0.0, 100), got reward_center=-0.5"),  # [0, K)
    (dict(reward_center=[20, 100]), "reward_center must be in [0.0, 100), got reward_center=100"),
    (dict(reward_center=None), "reward_center must be a number"),
    (dict(reward_width=-1), "reward_width must be"),
    (dict(lr=0), "lr must be a finite number > 0"),
    (dict(lr=-1e-3), "lr must be a finite number > 0, got lr=-0.001"),
    (dict(algorithms=["sft", "dpo"], lr={"sft": 0.1}), "lr as a dict must name exactly the algorithms"),
    (dict(beta=0), "beta must be a finite number > 0"),
    (dict(algorithms=["sft", "sigmoid"], beta={"sft": 0.1}), "beta as a dict must name exactly the algorithms with a beta ['sigmoid']"),
    (dict(regime="online"), "regime must be one of offline, on_policy; got regime='online'"),
    (dict(policy="transformer"), "policy must be one of tabular, mlp"),
    (dict(optimizer="lion"), "optimizer must be one of sgd, adam, normalized"),  # core.OPTIMIZERS with a batched step
    (dict(optimizer="adamw"), "optimizer must be one of sgd, adam, normalized; got optimizer='adamw'"),  # models only
    (dict(pairs="all"), "pairs must be one of best_worst, nested, all_pairs; got pairs='all'"),  # the old name of "nested"
    (dict(contexts=0), "contexts must be an integer >= 1"),
    (dict(min_reward_gap=-0.1), "min_reward_gap must be in [0.0, inf)"),
    (dict(logp_floor=0.5), "logp_floor must be in (-inf, 0.0)"),
    (dict(n_samples=1), "n_samples must be an integer >= 2"),
    (dict(reuse=0), "reuse must be an integer >= 1"),
    (dict(dataset_size=5), "dataset_size must be an integer >= 10"),
    (dict(K=1), "K must be an integer >= 2"),
    (dict(K=10**9, reward_center=5.0), "K=1000000000, contexts=1, dataset_size=1000, steps=300 would need at least"),  # before any allocation
    (dict(steps=10**12), "K=100, contexts=1, dataset_size=1000, steps=1000000000000 would need at least"),  # the record of every step
    (dict(algorithms="sft", lr=torch.tensor([0.1, 0.2])), "lr must be a finite number > 0"),
    (dict(algorithms="rpo", hyperparameters={"rpo": {"alpha": torch.ones(3)}}), "alpha must be a number or a 0-d tensor, got a tensor of shape (3,)"),
    (dict(algorithms="ppo", hyperparameters={"ppo": {"kl_coef": -1}}), "kl_coef must be in [0.0, inf), got kl_coef=-1"),
    (dict(algorithms="ppo", hyperparameters={"ppo": {"clip": 0}}), "clip must be a finite number > 0"),
    # a rule's hyperparameter as a keyword: refused, naming the rule it was meant for and the spelling that reaches it
    (dict(algorithms=["sft", "ppo"], clip=0.2), "clip=0.2 is a hyperparameter of ppo, not a BanditConfig field: give it to its rule, hyperparameters={'ppo': {'clip': 0.2}}"),
    (dict(algorithms=["sigmoid", "ipo"], negative_gradient=False), "negative_gradient=False is a hyperparameter of sigmoid, ipo"),
    (dict(algorithms="sft", clip=0.2), "unknown keyword argument clip=0.2: not a run_bandit argument nor a BanditConfig field"),
    (dict(algorithms="rwr", hyperparameters={"rwr": {"temperature": 0}}), "temperature must be a finite number > 0"),
    (dict(algorithms="sft_push_down", hyperparameters={"sft_push_down": {"push_down": -1}}), "push_down must be in [0.0, inf)"),
    (dict(algorithms="rpo", hyperparameters={"rpo": {"alpha": -1}}), "alpha must be in [0.0, inf), got alpha=-1"),
    (dict(algorithms="orpo", hyperparameters={"orpo": {"lambda_": float("nan")}}), "lambda_ must be a finite number"),
    (dict(algorithms="simpo", gamma_ratio=0.5), "unknown keyword argument gamma_ratio=0.5"),
    (dict(algorithms="simpo", hyperparameters={"simpo": {"gamma_ratio": 0.5}}), "simpo has no hyperparameter gamma_ratio=0.5"),
    (dict(algorithms="dpo_no_neg", hyperparameters={"dpo_no_neg": {"negative_gradient": True}}), "dpo_no_neg has no hyperparameter negative_gradient=True"),
    (dict(algorithms="dpo", hyperparameters={"dpo": {"negative_gradient": 0}}), "negative_gradient must be bool"),
    (dict(algorithms="simpo", hyperparameters={"simpo": {"gamma": float("nan")}}), "gamma must be a finite number or None, got gamma=nan"),  # before any training
    (dict(algorithms="cdpo", hyperparameters={"cdpo": {"label_smoothing": None}}), "label_smoothing must be a finite number, got label_smoothing=None"),
    (dict(algorithms="cdpo", hyperparameters={"cdpo": {"label_smoothing": 0.7}}), "label_smoothing must be in [0.0, 0.5]"),
    (dict(algorithms="ppo", hyperparameters={"ppo": {"clipp": 1}}), "ppo has no hyperparameter clipp=1"),
    (dict(algorithms="ppo", hyperparameters={"dpo": {}}), "hyperparameters names ['dpo']"),
    (dict(algorithms="ppo", hyperparameters=[("ppo", {})]), "hyperparameters must be dict, got list"),
    (dict(device="tpu"), "device must name a torch device, got device='tpu'"),
]
