"""One input contract for the whole library (issue 15), as table-driven tests.

Every public callable of prefbench_lib has an entry in `contract_table.table()`: a valid call and the kind of each argument it
checks, or a one-line reason why it checks none. From the kinds come the cases:

- `test_valid_call`: the entry's valid call runs and returns no NaN.
- `test_bad_value`: each bad value of each argument's kind (NaN, +-inf, wrong dtype, wrong shape, out of range, wrong type)
  raises a `ValueError` whose message names the argument and, for a value, shows it.
- `test_neginf_logps`: a log-probability of -inf (a legal value) gives a result without NaN, or a ValueError naming it.
- `test_empty_batch`, `test_empty_sequence`: a batch of 0 examples (sequences of 0 tokens) gives a defined result or a
  ValueError naming an argument, never a deep torch error or a NaN.
- `test_unknown_keyword`: a callable that takes **kwargs refuses an unknown one with a ValueError naming it.
- `test_every_public_callable_has_an_entry`: a new public function without an entry fails, so the contract grows with the library.

What fails today is marked, group by group, in TODO below: strict xfails, so a fix that makes a case pass turns it into an XPASS
failure and its pattern must be removed. TODO reads as the issue's to-do list.
"""
from __future__ import annotations

import fnmatch
import importlib
import math
import pkgutil
import re

import pytest
import torch

import prefbench_lib
from contract_table import Entry, Reason, table

pytestmark = pytest.mark.filterwarnings("ignore")  # bad inputs provoke library warnings by design; the contract is about errors

# ---------------------------------------------------------------------------------------------------------------------------
# The to-do list: (what happens today, the cases it covers). Every case that fails today is in exactly one group.
# Case ids: `entry-argument:kind-label` for a bad value (losses.kto_loss-kl_ref_point:per_example-tensor-shape-B1), and
# `entry-argument-neginf[-two]`, `entry-all-logps-neginf`, `entry-empty-batch`, `entry-empty-sequence`, `entry-unknown-keyword`.
# Patterns are fnmatch globs with {a,b} alternatives: `{core.kl,nash.win_rates}-*:*` is every bad value of those two.
# When a fix lands its cases XPASS: delete their alternative or pattern (`python tests/test_contract.py` lists what to delete).
# ---------------------------------------------------------------------------------------------------------------------------

TODO: list[tuple[str, list[str]]] = [
    ('no check at the door: NaN, inf, wrong shapes and types come back as results or torch errors', [  # 394
        '{core.completion_lengths,core.kl,core.scored_mask,dashboards.RunCache,dashboards.axes,dashboards.reference_policy,'
        'listwise.lambda_weights,lm_data.circular_bump,lm_train.collate,lm_train.pair_metrics,losses.capped_expm1,'
        'losses.f_divergence_score,losses.log1mexp,losses.soft_bce,nash.bt_preferences,nash.mixture_preferences,'
        'nash.win_rates,toy.MLPPolicy,toy.StepMetrics,toy.TabularPolicy,toy.kl_frontier,toy.pair_positions}-*:*',
    ]),
    ('-inf meets -inf (impossible under policy and reference, or twice in one list): NaN', [  # 10
        '{core.wpo_weights,listwise.adaptive_step_rewards,lm_train.pair_metrics,losses.kto_kl_ref_point,'
        'metrics.dpo_flip_threshold,metrics.implicit_rewards}-all-logps-neginf',
        '{listwise.lipo_lambda_loss,listwise.tpo_loss}-policy_logps-neginf-two',
        '{listwise.lipo_lambda_loss,listwise.tpo_loss}-ref_logps-neginf-two',
    ]),
    ('degenerate shapes: 0-token sequences reach IndexError, empty batches give NaN, empty lists reach max()', [  # 18
        '{core.completion_lengths,core.ld_sequence_logps,core.scored_mask,core.sequence_logps,core.token_log_sum_sq_probs,'
        'core.token_logps,core.wpo_weights}-empty-sequence',
        '{dashboards.loss_curves,lm_train.encode,lm_train.sample}-*:texts-empty',
        '{lm_train.pair_metrics,losses.gradient_weight,losses.kto_kl_ref_point,losses.lcpo_estimate_noise,'
        'metrics.idealized_ranking_accuracy,metrics.list_ranking_accuracy,metrics.ranking_accuracy}-empty-batch',
        'toy.*-empty-sequence',
    ]),
    ('silent broadcasting: nash takes a per-example beta/eta of shape [B, 1] or of another batch size', [  # 9
        'nash.*:per_example-tensor-shape-long',
        'nash.*:real-shape-B1',
        '{nash.best_response,nash.duality_gap,nash.regularized_nash}-*:per_example-tensor-shape-B1',
    ]),
    ('lengths: +inf, bool and fractional counts accepted (the losses check only > 0, one reduction); the ranking metrics also '
     'take 0 and negative lengths', [
        '*:lengths-{dtype-bool,posinf}',
        '*:lengths-range-fraction',
        'metrics.list_ranking_accuracy-*:lengths-{range-negative,range-zero}',
    ]),
    ('log-probabilities: values > 0, +inf and bool tensors accepted (only NaN is refused)', [  # 358
        '{core.ld_sequence_logps,core.wpo_weights,lm_train.preference_loss,losses.alphapo_loss,losses.aot_loss,'
        'losses.aot_unpaired_loss,losses.apo_down_loss,losses.apo_zero_loss,losses.apo_zero_unpaired_loss,'
        'losses.attenuated_dpo,losses.bco_loss,losses.bco_pair_loss,losses.cdpo_loss,losses.chipo_loss,'
        'losses.cpo_hinge_loss,losses.cpo_ipo_loss,losses.cpo_loss,losses.discopop_loss,losses.dpop_loss,'
        'losses.exo_pair_loss,losses.hinge_loss,losses.ipo_loss,losses.kto_kl_ref_point,losses.kto_loss,'
        'losses.nca_pair_loss,losses.npo_loss,losses.robust_loss,losses.sft_loss,losses.sigmoid_loss,'
        'losses.sigmoid_norm_loss,losses.simpo_loss,losses.soft_dpo_loss,losses.sppo_hard_loss}-*:logps-dtype-bool',
        '{core.ld_sequence_logps,core.wpo_weights,lm_train.preference_loss,losses.alphapo_loss,losses.apo_down_loss,'
        'losses.apo_zero_loss,losses.apo_zero_unpaired_loss,losses.attenuated_dpo,losses.bco_loss,losses.bco_pair_loss,'
        'losses.chipo_loss,losses.cpo_hinge_loss,losses.dpop_loss,losses.hinge_loss,losses.ipo_loss,'
        'losses.kto_kl_ref_point,losses.kto_loss,losses.nca_pair_loss,losses.npo_loss,losses.sft_loss,losses.sigmoid_loss,'
        'losses.sigmoid_norm_loss,losses.simpo_loss,losses.sppo_hard_loss}-*:logps-posinf',
        '{core.ld_sequence_logps,core.wpo_weights,lm_train.preference_loss}-*:logps-range-positive',
        'listwise.*:logps-{dtype-bool,posinf,range-positive}',
        'losses.*:logps-range-positive',
        '{losses.aot_loss,losses.aot_unpaired_loss,losses.cdpo_loss,losses.cpo_ipo_loss,losses.cpo_loss,losses.robust_loss,'
        'losses.soft_dpo_loss}-policy_rejected_logps:logps-posinf',
        '{losses.aot_loss,losses.aot_unpaired_loss,losses.cdpo_loss,losses.robust_loss,'
        'losses.soft_dpo_loss}-ref_chosen_logps:logps-posinf',
        'losses.discopop_loss-policy_chosen_logps:logps-posinf',
        'losses.discopop_loss-ref_rejected_logps:logps-posinf',
        'metrics.*:logps-{dtype-bool,posinf,range-positive}',
        'toy.*:logps-{dtype-bool,nan,posinf,range-positive}',
    ]),
    ('logits/labels/masks: bool logits accepted, +inf or all--inf rows give NaN, actions and masks unchecked', [  # 17
        '*:logits-dtype-bool',
        'core.token_log_sum_sq_probs-*:logits-{posinf,range-all-neginf-row}',
        'losses.curriculum_pairs-*:mask-type-*',
        'losses.curriculum_pairs-*:mask-{nan,range-half,range-two}',
        'toy.*:labels-{dtype-float,range-negative,range-vocab,shape-short,type-None,type-list,type-str}',
    ]),
    ("the ValueError names another argument (an inner call's: reward_center for center) or not the value", [  # 76
        'dashboards.loss_curves-*:integer-*',
        'dashboards.loss_curves-*:texts-type-str',
        '{listwise.adaptive_step_rewards,nash.bt_game}-*:real-{neginf,posinf}',
        '{lm_data.dataset_kind,lm_data.validate_dataset,lm_train.load_config}-*:object-type-str',
        'lm_data.ranked_dataset-k:*',
        'losses.gradient_weight-anchor:scalar-{nan,posinf}',
        'losses.gradient_weight-lengths:scalar-{nan,neginf,range-at-low,range-below}',
        '{losses.loss_mixture,nash.get_algorithm,toy.pairwise_rule}-*:choice-range-unknown',
        'metrics.train_pairs-runs:choice-range-unknown',
        'nash.bt_game-*:real-{nan,shape-short}',
        '{nash.check_preference_matrix,toy.fit_unimodal}-*:scalar-range-below',
        'nash.check_preference_matrix-*:scalar-neginf',
        '{nash.get_algorithm,toy.pairwise_rule}-*:choice-{type-None,type-int}',
        'nash.sampled_win_rates-*:distribution-shape-K1',
        '{toy.BanditConfig,toy.run_bandit}-algorithms:*',
        'toy.bin_reward-*:scalar-*',
        'toy.fit_unimodal-init_std:scalar-{neginf,range-at-low}',
        'toy.fit_unimodal-lr:scalar-{nan,neginf}',
        'toy.reference_distribution-n_draws:integer-nan',
        'toy.reference_distribution-seed:integer-nan',
        'toy.without_negative_gradient-*:*',
    ]),
    ('scalar hyperparameters with no range check: NaN, +-inf, out-of-range tol, atol, loc, lr accepted', [  # 36
        'losses.gradient_weight-*:scalar-range-above',
        'losses.gradient_weight-lengths:scalar-posinf',
        'losses.lcpo_estimate_noise-tol:scalar-{nan,neginf,posinf,range-at-low,range-below}',
        '{nash.check_preference_matrix,nash.nash_equilibrium,nash.regularized_nash,toy.fit_unimodal,'
        'toy.make_batch}-*:scalar-posinf',
        '{nash.check_preference_matrix,nash.nash_equilibrium,nash.regularized_nash,toy.make_batch}-*:scalar-nan',
        '{nash.check_preference_matrix,nash.nash_equilibrium,nash.regularized_nash}-*:scalar-range-at-low',
        '{nash.nash_equilibrium,nash.regularized_nash,toy.make_batch}-*:scalar-{neginf,range-below}',
        'toy.fit_unimodal-init_mean:scalar-{nan,neginf}',
        'toy.fit_unimodal-init_std:scalar-nan',
        'toy.fit_unimodal-lr:scalar-range-at-low',
        'toy.reference_distribution-loc:scalar-{nan,neginf,posinf}',
        'toy.reference_distribution-pseudo_count:scalar-{nan,posinf}',
    ]),
    ('integers: negative, float, NaN or bool accepted (seeds, iterations, ids) or reaching torch errors', [  # 139
        'dashboards.grid-*:integer-type-bool',
        '{dashboards.websocket_origins,intransitive.fit_bt,nash.online_ipo_eta,nash.regularized_nash,'
        'nash.sampled_win_rates}-*:integer-*',
        '{intransitive.fit_bt_mixture,intransitive.fit_gpm,lm_data.preference_dataset,lm_data.prompt_dataset,'
        'lm_data.ranked_dataset,lm_data.sft_dataset,lm_data.unpaired_dataset,lm_train.Batches,nash.run_dynamics}-seed:*',
        '{intransitive.fit_bt_mixture,intransitive.fit_gpm}-iters:*',
        'lm_train.sample-*:integer-nan',
        'lm_train.sample-*:integer-type-*',
        'lm_train.sample-eos_id:*',
        'lm_train.sample-n:*',
        'lm_train.sample-pad_id:*',
        'losses.*:integer-{nan,range-below,type-None,type-bool,type-float,type-str}',
        'toy.bin_reward-*:integer-{type-None,type-str}',
        'toy.reference_distribution-n_draws:integer-{type-None,type-bool,type-float,type-str}',
        'toy.reference_distribution-seed:integer-{range-below,type-None,type-bool,type-float,type-str}',
    ]),
    ("choices: a list reaches 'unhashable type', an int or None a deeper error; dtype, allow_inf unchecked", [  # 47
        '{core.check_tensor,nash.bt_game,nash.cyclic_game,nash.gpm_game,nash.mixture_game,nash.random_game,'
        'nash.rps_game}-*:choice-*',
        '{dashboards.hyperparameter_class,losses.get_loss,losses.gradient_weight,losses.loss_hyperparameters,'
        'nash.get_algorithm,nash.run_dynamics,toy.pairwise_rule,widgets.hyperparameter_controls,'
        'widgets.loss_frame}-*:choice-type-list',
        'lm_train.TrainConfig-loss_type:choice-{type-None,type-int}',
        'losses.loss_mixture-*:choice-type-*',
        'metrics.train_pairs-runs:choice-{type-None,type-int}',
        'nash.preference_matrix-dtype:*',
    ]),
    ('devices: games and BanditConfig pass an unknown or unavailable device (mps, cuda) on to torch', [  # 40
        'nash.*:device-{range-cuda-unavailable,range-mps-unavailable,range-unknown,type-float,type-list}',
        'toy.BanditConfig-*:device-*',
    ]),
    ('distributions and preference matrices unchecked where they enter; bf16 P reaches the LU kernel', [  # 92
        '{intransitive.excess_loss,intransitive.pairwise_cross_entropy,nash.sampled_win_rates}-*:preferences-type-*',
        '{intransitive.excess_loss,intransitive.pairwise_cross_entropy,nash.sampled_win_rates}-*:preferences-{dtype-int,'
        'nan,posinf,range-above-1,range-not-complementary,shape-K1,shape-nonsquare}',
        'nash.best_response-*:preferences-*',
        'nash.best_response-pi:*',
        '{nash.mixture_game,nash.regularized_nash,nash.sampled_win_rates}-*:distribution-type-*',
        'nash.regularized_nash-*:preferences-dtype-bf16',
        'nash.sampled_win_rates-*:distribution-{nan,posinf,range-negative,range-sum,shape-short}',
        'toy.fit_unimodal-*:distribution-*',
    ]),
    ('real-valued tensors (scores, margins, rewards, embeddings): +-inf, NaN or bool accepted', [  # 35
        '{listwise.adaptive_step_rewards,listwise.lipo_lambda_loss,listwise.listmle_loss,listwise.tpo_loss,'
        'losses.curriculum_pairs,losses.gradient_weight,losses.lcpo_estimate_noise,losses.lcpo_weights,losses.loss_mixture,'
        'nash.bt_game,nash.gpm_preferences,nash.gpm_scores,toy.make_batch}-*:real-dtype-bool',
        '{listwise.listmle_loss,losses.curriculum_pairs,losses.gradient_weight,losses.lcpo_estimate_noise,'
        'losses.lcpo_weights,nash.gpm_preferences,nash.gpm_scores,toy.make_batch}-*:real-{neginf,posinf}',
        'metrics.*:real-{dtype-bool,neginf,posinf}',
        '{nash.gpm_preferences,nash.gpm_scores,toy.make_batch}-*:real-nan',
    ]),
    ('numbers of the wrong type: str or None reach TypeError in check_in_interval, a list or bool is accepted', [  # 208
        'core.*:per_example-{type-None,type-list,type-str}',
        '{core.ld_sequence_logps,losses.Pair,losses.lcpo_estimate_noise,losses.lcpo_weights,nash.bt_game,nash.cyclic_game,'
        'nash.gpm_game,nash.mixture_game,toy.SFTPushDown}-*:scalar-{type-None,type-list,type-str}',
        'lm_data.Language-ref_floor:scalar-{type-None,type-list,type-str}',
        'lm_train.TrainConfig-f_alpha_divergence_coef:scalar-{type-None,type-list,type-str}',
        'lm_train.TrainConfig-ref_model_mixup_alpha:scalar-{type-None,type-list,type-str}',
        '{losses.alphapo_loss,losses.attenuated_dpo,losses.simpo_loss}-gamma:scalar-{type-list,type-str}',
        '{losses.alphapo_loss,losses.simpo_loss}-gamma_beta_ratio:scalar-{type-list,type-str}',
        '{losses.alphapo_loss,toy.RPO,toy.RULES/alphapo}-alpha:scalar-type-None',
        '{losses.alphapo_loss,toy.RPO}-alpha:scalar-{type-list,type-str}',
        '{losses.aot_loss,losses.aot_unpaired_loss,losses.cdpo_loss,losses.cpo_loss,losses.exo_pair_loss,'
        'losses.robust_loss,toy.RULES/aot,toy.RULES/aot_unpaired,toy.RULES/cdpo,toy.RULES/cpo,toy.RULES/exo_pair,'
        'toy.RULES/robust,widgets.loss_frame}-label_smoothing:scalar-type-None',
        '{losses.aot_loss,losses.aot_unpaired_loss,losses.cdpo_loss,losses.cpo_loss,losses.exo_pair_loss,'
        'losses.robust_loss,widgets.loss_frame}-label_smoothing:scalar-{type-list,type-str}',
        '{losses.attenuated_dpo,toy.RULES/sigmoid_attenuated,toy.run_bandit}-gamma:scalar-type-None',
        '{losses.bco_loss,losses.bco_pair_loss,toy.RULES/bco_pair}-reward_shift:scalar-type-None',
        '{losses.bco_loss,losses.bco_pair_loss}-reward_shift:scalar-{type-list,type-str}',
        'losses.chipo_loss-r_max:scalar-{type-list,type-str}',
        '{losses.cpo_hinge_loss,losses.cpo_ipo_loss,losses.cpo_loss,toy.RULES/cpo,toy.RULES/cpo_hinge,'
        'toy.RULES/cpo_ipo}-cpo_alpha:scalar-type-None',
        '{losses.cpo_hinge_loss,losses.cpo_ipo_loss,losses.cpo_loss}-cpo_alpha:scalar-{type-list,type-str}',
        '{losses.dpop_loss,losses.orpo_loss,toy.RULES/dpop,toy.RULES/orpo}-lambda_:scalar-type-None',
        '{losses.dpop_loss,losses.orpo_loss}-lambda_:scalar-{type-list,type-str}',
        'losses.gradient_weight-anchor:scalar-{type-None,type-bool,type-list,type-str}',
        'losses.gradient_weight-lengths:scalar-{type-None,type-bool,type-list,type-str}',
        '{losses.kto_loss,losses.soft_dpo_loss}-*:per_example-{type-None,type-str}',
        'losses.kto_loss-*:per_example-type-bool',
        'losses.lcpo_estimate_noise-tol:scalar-type-bool',
        'losses.soft_dpo_loss-*:per_example-type-list',
        'metrics.*:per_example-{type-None,type-bool,type-str}',
        'metrics.idealized_ranking_accuracy-eps:scalar-{type-None,type-list,type-str}',
        'metrics.pair_problem-ref_signal:scalar-type-bool',
        'metrics.train_pairs-stop_loss:scalar-type-bool',
        '{nash.best_response,nash.duality_gap,nash.regularized_nash}-*:per_example-type-*',
        '{nash.check_preference_matrix,nash.nash_equilibrium,nash.regularized_nash,toy.fit_unimodal,'
        'toy.make_batch}-*:scalar-type-*',
        'nash.run_dynamics-beta:per_example-{type-None,type-bool,type-list,type-str}',
        '{toy.BanditConfig,toy.run_bandit,widgets.toy_frame}-reward_center:scalar-{type-None,type-bool,type-str}',
        'toy.BanditConfig-logp_floor:scalar-type-str',
        'toy.BanditConfig-min_reward_gap:scalar-{type-None,type-list,type-str}',
        'toy.PPO-kl_coef:scalar-{type-None,type-list,type-str}',
        'toy.RULES/discopop-tau:scalar-type-None',
        'toy.reference_distribution-loc:scalar-{type-None,type-bool,type-list,type-str}',
        'toy.reference_distribution-pseudo_count:scalar-{type-None,type-bool,type-list,type-str}',
    ]),
    ('tensors of the wrong type: None, a list or a string reaches AttributeError/TypeError', [  # 47
        '{core.wpo_weights,losses.apo_zero_unpaired_loss,losses.bco_loss,losses.kto_kl_ref_point,'
        'losses.kto_loss}-*:logps-type-None',
        'listwise.*:logps-type-None',
        '{listwise.lipo_lambda_loss,listwise.listmle_loss,listwise.tpo_loss}-*:real-type-None',
        'metrics.*:logps-type-None',
        'metrics.*:real-type-None',
        '{nash.bt_game,nash.gpm_preferences,nash.gpm_scores,toy.make_batch}-*:real-type-*',
        'toy.*:logps-{type-None,type-list,type-str}',
    ]),
    ('objects of the wrong type reach AttributeError/TypeError; a bare string is read letter by letter', [  # 110
        '*:text-{type-None,type-int,type-list}',
        'core.*:object-{type-int,type-str}',
        'dashboards.*:texts-{type-None,type-int}',
        '{dashboards.colors,dashboards.websocket_origins,lm_train.encode,lm_train.sample}-*:texts-type-*',
        '{dashboards.grid,dashboards.loss_curves,lm_data.preference_dataset,lm_data.prompt_dataset,lm_data.ranked_dataset,'
        'lm_data.sft_dataset,lm_data.unpaired_dataset,lm_train.TrainConfig,lm_train.encode,lm_train.preference_loss,'
        'lm_train.sample,nash.sampled_win_rates}-*:object-*',
        '{dashboards.hyperparameter_values,lm_data.build_tokenizer,lm_train.batch_logps,lm_train.build_model,'
        'lm_train.family_of,toy.bandit_frame,toy.reference_run,toy.train}-*:*',
        'lm_data.*:object-{type-None,type-int}',
        'lm_train.*:object-{type-None,type-int}',
        'losses.loss_mixture-*:object-type-int',
        'nash.*:object-{type-None,type-str}',
        'widgets.*:object-{type-None,type-int,type-str}',
    ]),
    ('mismatched shapes: make_batch takes log-probs and rewards over the wrong number of actions', [  # 3
        'toy.*:logps-shape-short',
        'toy.make_batch-*:real-shape-short',
    ]),
    ('an unknown keyword: preset hands it to BanditConfig, which raises TypeError', [  # 1
        'toy.preset-unknown-keyword',
    ]),
]


# ---------------------------------------------------------------------------------------------------------------------------
# The public callables
# ---------------------------------------------------------------------------------------------------------------------------

def public_callables() -> dict[str, object]:
    "module.name -> object, for every callable in each prefbench_lib module's __all__ (a re-export counts under its home module)."
    out = {}
    for info in pkgutil.iter_modules(prefbench_lib.__path__):
        if info.name.startswith("_"): continue
        mod = importlib.import_module(f"prefbench_lib.{info.name}")
        for name in getattr(mod, "__all__", []):
            obj = getattr(mod, name)
            if not callable(obj): continue  # constants, registries (dicts), cached instances
            home = getattr(obj, "__module__", "") or ""
            if home.startswith("prefbench_lib.") and home != mod.__name__ and getattr(importlib.import_module(home), name, None) is obj:
                out[f"{home.removeprefix('prefbench_lib.')}.{name}"] = obj
            else: out[f"{info.name}.{name}"] = obj
    return out


# ---------------------------------------------------------------------------------------------------------------------------
# Judging an outcome
# ---------------------------------------------------------------------------------------------------------------------------

def names(msg: str, name: str) -> bool: return re.search(rf"(?<![\w]){re.escape(name)}(?![\w])", msg) is not None

def _tensors(out) -> list:
    "The values a result is judged on: a loss's per-example losses, else every tensor or number in it."
    if hasattr(out, "output") and hasattr(out, "components"): return _tensors(out.output)  # Mixture
    if hasattr(out, "losses") and hasattr(out, "_fields"): return [out.losses]  # LossOutput, ListLossOutput, StepLoss
    if isinstance(out, (torch.Tensor, float, int)) and not isinstance(out, bool): return [out]
    if isinstance(out, (tuple, list)): return [x for o in out for x in _tensors(o)]
    if isinstance(out, dict): return [x for o in out.values() for x in _tensors(o)]
    return []

def has_nan(out) -> bool:
    for x in _tensors(out):
        if isinstance(x, torch.Tensor):
            if (x.is_floating_point() or x.is_complex()) and bool(torch.isnan(x).any()): return True
        elif isinstance(x, float) and math.isnan(x): return True
    return False

def is_loss(out) -> bool: return hasattr(out, "losses") or hasattr(out, "components")

def fail(msg: str):
    "Fail with the message only: no traceback to format (an xfailed case costs no source parsing)."
    pytest.fail(msg, pytrace=False)

def summary(out) -> str:
    s = repr(out).replace("\n", " ")
    return s if len(s) <= 160 else s[:157] + "..."

def short(e: BaseException) -> str:
    s = f"{type(e).__name__}: {e}".replace("\n", " ")
    return s if len(s) <= 240 else s[:237] + "..."

def refused(call, names_any: tuple[str, ...], show: str | None = None, may_return: bool = False, neginf_ok: bool = True) -> str | None:
    "None if `call()` raises a ValueError naming one of `names_any` (and matching `show`), or returns a defined result when allowed."
    try: out = call()
    except ValueError as e:
        msg = str(e)
        if not any(names(msg, n) for n in names_any): return f"a ValueError that does not name {' or '.join(names_any)}: {short(e)}"
        if show is not None and not re.search(show, msg): return f"a ValueError naming {names_any[0]} without the bad value: {short(e)}"
        return None
    except Exception as e:  # noqa: BLE001 - anything but a ValueError is a failure of the contract
        return f"{short(e)} (not a ValueError)"
    if may_return:
        if has_nan(out): return f"a NaN result: {summary(out)}"
        if not neginf_ok and is_loss(out) and any(isinstance(x, torch.Tensor) and bool((x == -math.inf).any()) for x in _tensors(out)):
            return f"a loss of -inf: {summary(out)}"
        return None
    return f"accepted: returned {summary(out)}"


# ---------------------------------------------------------------------------------------------------------------------------
# The cases
# ---------------------------------------------------------------------------------------------------------------------------

def _entries() -> dict[str, Entry]: return {k: e for k, e in table().items() if isinstance(e, Entry)}

def _bad_cases() -> list[tuple[str, str, str, str]]:
    "(id, entry, argument, bad label) for every bad value of every argument of every entry; the id is entry-argument:kind-label."
    out = []
    for key, e in _entries().items():
        valid = e.valid()
        for arg, kind in e.kinds.items():
            for b in kind.bads(valid.get(arg)): out.append((f"{key}-{arg}:{kind.name}-{b.label}", key, arg, b.label))
    return out

def _neginf_cases() -> list[tuple[str, str, str]]:
    "(id, entry, variant): one -inf per log-prob argument, two in one argument, -inf in every log-prob argument at once."
    out = []
    for key, e in _entries().items():
        args = [a for a, k in e.kinds.items() if k.logps]
        for a in args:
            out += [(f"{key}-{a}-neginf", key, f"one:{a}"), (f"{key}-{a}-neginf-two", key, f"two:{a}")]
            if e.kinds[a].name == "logits": out.append((f"{key}-{a}-neginf-unscored-row", key, f"unscored:{a}"))
        if len(args) > 1: out.append((f"{key}-all-logps-neginf", key, "all"))
    return out

def _dim_cases(attr: str, suffix: str) -> list[tuple[str, str]]:
    "Entries with arguments that have a batch (or sequence) dimension."
    out = []
    for key, e in _entries().items():
        valid = e.valid()
        if any(getattr(k, attr) is not None and isinstance(valid.get(a), torch.Tensor) for a, k in e.kinds.items()):
            out.append((f"{key}-{suffix}", key))
    return out

def expand(pattern: str) -> list[str]:
    "The globs a pattern stands for: each {a,b,...} replaced by each alternative."
    m = re.search(r"\{([^{}]*)\}", pattern)
    if not m: return [pattern]
    return [x for alt in m.group(1).split(",") for x in expand(pattern[:m.start()] + alt + pattern[m.end():])]

_TODO_GLOBS = [(reason, [g for p in patterns for g in expand(p)]) for reason, patterns in TODO]
_TODO_RX = [(reason, re.compile("|".join(fnmatch.translate(g) for g in globs))) for reason, globs in _TODO_GLOBS]

def _todo_reason(case_id: str) -> str | None:
    return next((reason for reason, rx in _TODO_RX if rx.match(case_id)), None)

def _params(cases: list[tuple]) -> list:
    "pytest params, the failing-today ones marked xfail (strict) with their to-do group."
    out = []
    for case in cases:
        reason = _todo_reason(case[0])
        marks = [pytest.mark.xfail(strict=True, reason=f"issue 15: {reason}")] if reason else []
        out.append(pytest.param(*case[1:], id=case[0], marks=marks))
    return out

BAD, NEGINF = _bad_cases(), _neginf_cases()
EMPTY_BATCH, EMPTY_SEQ = _dim_cases("batch", "empty-batch"), _dim_cases("seq", "empty-sequence")
VALID = [(k, k) for k in _entries()]
UNKNOWN_KW = [(f"{k}-unknown-keyword", k) for k, e in _entries().items() if e.unknown_kw]
ALL_IDS = [c[0] for c in (*BAD, *NEGINF, *EMPTY_BATCH, *EMPTY_SEQ, *UNKNOWN_KW)]


# ---------------------------------------------------------------------------------------------------------------------------
# The table covers the library
# ---------------------------------------------------------------------------------------------------------------------------

def test_every_public_callable_has_an_entry():
    missing = sorted(set(public_callables()) - set(table()))
    assert not missing, ("public callables without an entry in tests/contract_table.py (give each a valid call and its "
                         f"arguments' kinds, or a Reason(...) saying why it checks none): {missing}")

def test_no_entry_for_a_callable_that_is_gone():
    stale = sorted(k for k in table() if "/" not in k and k not in public_callables())  # "toy.RULES/x": generated from a registry
    assert not stale, f"entries in tests/contract_table.py for callables that are no longer public: {stale}"

def test_reasons_are_one_line():
    bad = {k: r.why for k, r in table().items() if isinstance(r, Reason) and (not r.why.strip() or "\n" in r.why or len(r.why) > 200)}
    assert not bad, bad

def test_todo_groups_are_live_and_disjoint():
    "Every alternative of every to-do pattern still matches a case, and no case is in two groups."
    dead = [g for _, gs in _TODO_GLOBS for g in gs if not any(map(re.compile(fnmatch.translate(g)).match, ALL_IDS))
            and "-unavailable" not in g]  # an unavailable-device case exists only on machines without that device
    assert not dead, f"to-do patterns that match no case (remove them): {dead}"
    twice = [i for i in ALL_IDS if sum(bool(rx.match(i)) for _, rx in _TODO_RX) > 1]
    assert not twice, f"cases in more than one to-do group: {sorted(twice)[:20]}"


# ---------------------------------------------------------------------------------------------------------------------------
# The contract, case by case
# ---------------------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("key", [pytest.param(k, id=i) for i, k in VALID])
def test_valid_call(key):
    e = table()[key]
    out = e.fn(**e.valid())
    assert not has_nan(out), f"{key}: the valid call returned NaN: {summary(out)}"


@pytest.mark.parametrize("key,arg,label", _params(BAD))
def test_bad_value(key, arg, label):
    e = table()[key]
    kw, kind = e.valid(), e.kinds[arg]
    bad = {b.label: b for b in kind.bads(kw.get(arg))}[label]
    kw[arg] = bad.value
    problem = refused(lambda: e.fn(**kw), (kind.named or arg,), bad.show, bad.may_return)
    if problem: fail(f"{key}({arg}={label}): {problem}")


def _with_neginf(kw: dict, arg: str, kind, n: int) -> None:
    "Put -inf into kw[arg] at the kind's position (and the n - 1 entries after it, in memory order)."
    v = kw[arg].clone() if kw[arg].is_floating_point() else kw[arg].double()
    at = kind.at if kind.at is not None else (0,) * v.ndim
    i = sum(ix * st for ix, st in zip(at, v.stride()))
    v.view(-1)[i:i + n] = -math.inf
    kw[arg] = v

@pytest.mark.parametrize("key,variant", _params(NEGINF))
def test_neginf_logps(key, variant):
    """A log-probability of -inf (probability 0) is legal: a result without NaN (a loss of +inf or a finite limit), or a ValueError
    naming the argument. Variants: one -inf; two in one argument (two impossible responses in a list, or tokens); -inf in every
    log-prob argument at once (a response impossible under the policy and the reference: -inf - -inf); for logits, a whole row of
    -inf where the mask excludes it. Through logits, the gradient must be free of NaN too (a banned token's gradient is 0)."""
    e = table()[key]
    kw = e.valid()
    mode, _, arg = variant.partition(":")
    args = [a for a, k in e.kinds.items() if k.logps] if mode == "all" else [arg]
    for a in args:
        if mode == "unscored": kw[a] = kw[a].clone(); kw[a][0, 0, :] = -math.inf  # logits[0, 0] predict labels[0, 1], where mask is 0
        else: _with_neginf(kw, a, e.kinds[a], 2 if mode == "two" else 1)
    grads = [a for a in args if e.kinds[a].name == "logits"]
    for a in grads: kw[a] = kw[a].requires_grad_()
    out = []
    def call():
        out.append(e.fn(**kw))
        return out[-1]
    problem = refused(call, tuple(e.kinds[a].named or a for a in args), may_return=True, neginf_ok=False)
    if problem: fail(f"{key}({', '.join(args)} with -inf, {mode}): {problem}")
    finite = [t[torch.isfinite(t)].sum() for t in (_tensors(out[0]) if out else []) if isinstance(t, torch.Tensor) and t.requires_grad]
    if grads and finite:
        for a, g in zip(grads, torch.autograd.grad(sum(finite), [kw[a] for a in grads])):
            if bool(torch.isnan(g).any()): fail(f"{key}({a} with -inf, {mode}): NaN gradient at {torch.isnan(g).nonzero()[:4].tolist()}")


def _sliced(key: str, attr: str) -> tuple[dict, tuple[str, ...]]:
    e = table()[key]
    kw, sliced = e.valid(), []
    for a, k in e.kinds.items():
        d = getattr(k, attr)
        if d is not None and isinstance(kw.get(a), torch.Tensor):
            kw[a] = kw[a].narrow(d, 0, 0).clone(); sliced.append(k.named or a)
    return kw, tuple(sliced)

@pytest.mark.parametrize("key", _params(EMPTY_BATCH))
def test_empty_batch(key):
    kw, sliced = _sliced(key, "batch")
    problem = refused(lambda: table()[key].fn(**kw), sliced, may_return=True)
    if problem: fail(f"{key}(empty batch of {', '.join(sliced)}): {problem}")

@pytest.mark.parametrize("key", _params(EMPTY_SEQ))
def test_empty_sequence(key):
    kw, sliced = _sliced(key, "seq")
    problem = refused(lambda: table()[key].fn(**kw), sliced, may_return=True)
    if problem: fail(f"{key}(sequences of 0 tokens in {', '.join(sliced)}): {problem}")


@pytest.mark.parametrize("key", _params(UNKNOWN_KW))
def test_unknown_keyword(key):
    e = table()[key]
    problem = refused(lambda: e.fn(**e.valid(), bogus_keyword=1.0), ("bogus_keyword",))
    if problem: fail(f"{key}(bogus_keyword=1.0): {problem}")


if __name__ == "__main__":  # maintenance: which cases fail outside TODO, which TODO cases pass now (delete those)
    import sys  # python tests/test_contract.py [prefix ...]: only the cases whose id starts with a prefix (nash. toy.make_batch)
    import warnings
    warnings.simplefilter("ignore")
    only = tuple(sys.argv[1:])
    runs = [(c[0], test_bad_value, c[1:]) for c in BAD] + [(c[0], test_neginf_logps, c[1:]) for c in NEGINF] + \
           [(c[0], test_empty_batch, c[1:]) for c in EMPTY_BATCH] + [(c[0], test_empty_sequence, c[1:]) for c in EMPTY_SEQ] + \
           [(c[0], test_unknown_keyword, c[1:]) for c in UNKNOWN_KW]
    for case_id, test, args in runs:
        if only and not case_id.startswith(only): continue
        try: test(*args); failed = None
        except pytest.fail.Exception as e: failed = str(e).splitlines()[0]
        todo = _todo_reason(case_id)
        if failed and not todo: print(f"FAILS, not in TODO: {case_id}: {failed}")
        elif todo and not failed: print(f"PASSES, delete from TODO: {case_id}")
