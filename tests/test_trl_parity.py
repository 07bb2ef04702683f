"""prefbench's losses against TRL's DPOTrainer (a trusted peer), end to end on a tiny model.

For every loss_type TRL 1.16 shares with prefbench, a DPOTrainer computes its loss on a batch;
prefbench computes the same batch's log-probs with `sequence_logps` and the loss with `LOSSES[name]`.
The two must agree. This checks both the formulas and our next-token shift against TRL's.
Everything is built locally: a word-level tokenizer and a GPT-2 with 2 layers, saved to a temp dir (conftest.py).
"""
import pytest
import torch

trl = pytest.importorskip("trl")
from datasets import Dataset
from conftest import random_words

from prefbench_lib.core import (completion_lengths, ld_sequence_logps, sequence_logps, token_log_sum_sq_probs, token_logps,
                                 wpo_weights)
from prefbench_lib.losses import LOSSES, Pair, loss_mixture

# (TRL loss_type, its DPOConfig options, our hyperparameters)
CASES = {
    "sigmoid": ({}, {}), "hinge": ({}, {}), "ipo": ({}, {}), "nca_pair": ({}, {}), "bco_pair": ({}, {}),
    "sppo_hard": ({}, {}), "aot": ({"label_smoothing": 0.1}, {"label_smoothing": 0.1}),
    "aot_unpaired": ({"label_smoothing": 0.1}, {"label_smoothing": 0.1}),
    "apo_zero": ({}, {}), "apo_down": ({}, {}), "sigmoid_norm": ({}, {}),
    "robust": ({"label_smoothing": 0.2}, {"label_smoothing": 0.2}),
    "exo_pair": ({"label_smoothing": 1e-3}, {"label_smoothing": 1e-3}),
    "discopop": ({"discopop_tau": 0.05}, {"tau": 0.05}),
}


@pytest.fixture(scope="module")
def tiny(tiny_lm):
    "The saved tiny GPT-2 and tokenizer (conftest.py), and a small preference dataset."
    d, tok = tiny_lm
    g = torch.Generator().manual_seed(1)
    pick = random_words(g)
    rows = [{"prompt": pick(3), "chosen": " " + pick(int(torch.randint(2, 7, (1,), generator=g))),
             "rejected": " " + pick(int(torch.randint(2, 7, (1,), generator=g)))} for _ in range(8)]
    return d, tok, Dataset.from_list(rows)


@pytest.mark.parametrize("loss_type", sorted(CASES))
def test_matches_trl_dpo_trainer(tiny, tmp_path, loss_type):
    path, tok, ds = tiny
    trl_opts, ours = CASES[loss_type]
    beta = 0.3
    args = trl.DPOConfig(output_dir=str(tmp_path), loss_type=[loss_type], beta=beta, per_device_train_batch_size=8,
                         report_to="none", use_cpu=True, bf16=False, dataloader_num_workers=0, **trl_opts)
    trainer = trl.DPOTrainer(model=str(path), args=args, train_dataset=ds, processing_class=tok)
    with torch.no_grad():  # move the policy away from the reference, so the margins are not all zero
        g = torch.Generator().manual_seed(2)
        for p in trainer.model.parameters(): p.add_(0.5 * torch.randn(p.shape, generator=g))
    batch = next(iter(trainer.get_train_dataloader()))
    trainer.model.train()
    with torch.no_grad(): trl_loss = trainer.compute_loss(trainer.model, batch)

    ids, mask = batch["input_ids"], batch["completion_mask"]
    with torch.no_grad():
        pol = sequence_logps(trainer.model(input_ids=ids, attention_mask=batch["attention_mask"]).logits, ids, mask)
        ref = sequence_logps(trainer.ref_model(input_ids=ids, attention_mask=batch["attention_mask"]).logits, ids, mask)
    n = completion_lengths(mask).float()
    (pc, pr), (rc, rr), (lc, lr) = pol.chunk(2), ref.chunk(2), n.chunk(2)  # TRL's batch is [chosen; rejected]
    assert (pc - rc - pr + rr).abs().max() > 0.1, "the test needs non-trivial margins"
    ours_loss = LOSSES[loss_type](Pair(pc, pr, rc, rr, chosen_lengths=lc, rejected_lengths=lr), beta=beta, **ours).losses.mean()
    torch.testing.assert_close(ours_loss, trl_loss.float(), rtol=1e-5, atol=1e-5)


# The options of TRL's DPOConfig that change the loss beyond loss_type: f-divergences, LD-DPO, WPO and weighted mixtures.
OPTION_CASES = {  # id: (TRL loss_type list, DPOConfig options)
    "forward_kl": (["sigmoid"], {"f_divergence_type": "forward_kl"}),
    "js_divergence": (["sigmoid"], {"f_divergence_type": "js_divergence"}),
    "alpha_divergence": (["sigmoid"], {"f_divergence_type": "alpha_divergence", "f_alpha_divergence_coef": 0.3}),
    "alpha_divergence_default_coef": (["hinge"], {"f_divergence_type": "alpha_divergence"}),
    "alpha_divergence_ipo": (["ipo"], {"f_divergence_type": "alpha_divergence", "f_alpha_divergence_coef": 1.7}),
    "js_robust": (["robust"], {"f_divergence_type": "js_divergence", "label_smoothing": 0.2}),
    "ld_alpha": (["sigmoid"], {"ld_alpha": 0.4}),
    "use_weighting": (["sigmoid"], {"use_weighting": True}),
    "mpo_mixture": (["sigmoid", "bco_pair", "sft"], {"loss_weights": [0.8, 0.2, 1.0]}),
    # (TRL 1.16 cannot combine "sft" with use_weighting: it multiplies an expanded scalar in place, a RuntimeError)
    "everything": (["sigmoid_norm", "sft"], {"loss_weights": [0.7, 0.3], "f_divergence_type": "forward_kl"}),
    "ld_wpo_js": (["ipo"], {"ld_alpha": 0.6, "use_weighting": True, "f_divergence_type": "js_divergence"}),
}


def _trl_and_ours(tiny, tmp_path, loss_types, opts, ours_opts=None):
    "TRL's loss on one batch, and prefbench's on the same batch from the same options (or `ours_opts` in their place)."
    path, tok, ds = tiny
    beta = 0.3
    args = trl.DPOConfig(output_dir=str(tmp_path), loss_type=loss_types, beta=beta, per_device_train_batch_size=8,
                         report_to="none", use_cpu=True, bf16=False, dataloader_num_workers=0, **opts)
    trainer = trl.DPOTrainer(model=str(path), args=args, train_dataset=ds, processing_class=tok)
    with torch.no_grad():  # move the policy away from the reference (less than above: forward KL exponentiates -rho)
        g = torch.Generator().manual_seed(2)
        for p in trainer.model.parameters(): p.add_(0.2 * torch.randn(p.shape, generator=g))
    batch = next(iter(trainer.get_train_dataloader()))
    trainer.model.train()
    with torch.no_grad(): trl_loss = trainer.compute_loss(trainer.model, batch)

    o = dict(opts if ours_opts is None else ours_opts)
    ids, mask, att = batch["input_ids"], batch["completion_mask"], batch["attention_mask"]
    with torch.no_grad():
        z_pol, z_ref = trainer.model(input_ids=ids, attention_mask=att).logits, trainer.ref_model(input_ids=ids, attention_mask=att).logits
    t_pol, t_ref = token_logps(z_pol, ids, mask), token_logps(z_ref, ids, mask)
    m_c, m_r = mask.chunk(2)  # TRL's batch is [chosen; rejected]
    def sums(t):  # per-sequence log-probs of the chosen and the rejected halves: LD-DPO's, or plain sums
        tc, tr = t.chunk(2)
        return ld_sequence_logps(tc, m_c, tr, m_r, ld_alpha=o["ld_alpha"]) if o.get("ld_alpha") is not None else (tc.sum(-1), tr.sum(-1))
    (pc, pr), (rc, rr) = sums(t_pol), sums(t_ref)
    lc, lr = completion_lengths(mask).float().chunk(2)
    assert ((pc - rc).abs().max() < 25) and ((pr - rr).abs().max() < 25), "log-ratios within the exact range of every score"
    assert (pc - rc - pr + rr).abs().max() > 0.1, "the test needs non-trivial margins"
    pair = Pair(pc, pr, rc, rr, chosen_lengths=lc, rejected_lengths=lr, f_divergence_type=o.get("f_divergence_type", "reverse_kl"),
                f_alpha_divergence_coef=o.get("f_alpha_divergence_coef", 0.5))
    weights = None
    if o.get("use_weighting"):
        w = wpo_weights(t_pol, token_log_sum_sq_probs(z_pol, mask), mask)
        weights = w.chunk(2)[0] * w.chunk(2)[1]  # w(y_c) w(y_r)
    hp = {k: v for k, v in o.items() if k == "label_smoothing"}
    ours = loss_mixture(pair, loss_types, beta=beta, loss_weights=o.get("loss_weights"), example_weights=weights, **hp)
    return ours.output.losses.mean(), trl_loss.float()


@pytest.mark.parametrize("case", sorted(OPTION_CASES))
def test_matches_trl_dpo_trainer_options(tiny, tmp_path, case):
    ours, theirs = _trl_and_ours(tiny, tmp_path, *OPTION_CASES[case])
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("case,ours_opts", [
    ("alpha_divergence", {"f_divergence_type": "alpha_divergence", "f_alpha_divergence_coef": 0.3 * 1.01}),
    ("ld_alpha", {"ld_alpha": 0.4 * 1.01}),
    ("mpo_mixture", {"loss_weights": [0.8 * 1.01, 0.2, 1.0]}),
    ("everything", {"loss_weights": [0.7, 0.3 * 1.01], "f_divergence_type": "forward_kl"}),
], ids=["f_alpha_divergence_coef", "ld_alpha", "loss_weights", "sft_weight"])
def test_a_one_percent_change_is_seen(tiny, tmp_path, case, ours_opts):
    "The parity tests can fail: 1% off in one option on our side and the losses no longer agree."
    ours, theirs = _trl_and_ours(tiny, tmp_path, *OPTION_CASES[case], ours_opts=ours_opts)
    assert not torch.allclose(ours, theirs, rtol=1e-5, atol=1e-5), (case, ours, theirs)
