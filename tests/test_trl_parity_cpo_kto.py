"""prefbench's reference-free and unpaired losses against TRL 1.16's CPOTrainer and KTOTrainer, on a tiny model.

As in tests/test_trl_parity.py (DPOTrainer): a trainer computes its loss on one batch; prefbench computes the same
batch's log-probs with `sequence_logps` and the loss with its own API. The two must agree to 1e-5.
Everything is local and offline: a word-level tokenizer and a 2-layer GPT-2, saved to a temp dir.

CPOTrainer (trl.experimental.cpo): its collator gives chosen_* and rejected_* rows (prompt + completion + EOS, padded
right) with `*_labels` = input ids and -100 on the prompt and the padding; it runs the model once on [chosen; rejected]
(`concatenated_inputs`). So mask = labels != -100 and completion_lengths(mask) = the |y| TRL divides by ("ipo" and
"simpo" average the log-probs; "sigmoid" and "hinge" sum them). Its `cpo_alpha` NLL term is a token-mean
CrossEntropyLoss over the chosen rows' labels (completion + EOS, no prompt), which is the batch mean of prefbench's
sft term -s_c / mean_j |y_c[j]|. loss_type="alphapo" is TRL's sugar for "simpo" with `cpo_alpha=0` and `alpha`.

KTOTrainer: rows (prompt, completion + EOS, label) padded right with a `completion_mask`; TRL's loss is the mean over
the batch of desirable_weight * loss (label True) and undesirable_weight * loss (label False). For "kto" the
reference point is max(0, mean(policy - ref)) on `KL_*` rows: each prompt with the previous row's completion.
"""
import pytest
import torch

trl = pytest.importorskip("trl")
cpo = pytest.importorskip("trl.experimental.cpo")
from datasets import Dataset
from conftest import random_words

from prefbench_lib.core import completion_lengths, sequence_logps
from prefbench_lib.losses import LOSSES, Pair, apo_zero_unpaired_loss, kto_kl_ref_point, kto_loss, loss_mixture


def _cpo_simpo(pair, *, beta, gamma, cpo_alpha):
    "CPO-SimPO (TRL loss_type='simpo' with cpo_alpha > 0): SimPO plus cpo_alpha times the chosen NLL."
    out, _ = loss_mixture(pair, ["simpo", "sft"], beta=beta, loss_weights=[1.0, cpo_alpha], gamma=gamma)
    return out


# id: (CPOConfig options, our loss, our hyperparameters)
CPO_CASES = {
    "sigmoid_smoothed": (dict(loss_type="sigmoid", beta=0.3, label_smoothing=0.1, cpo_alpha=0.0),
                         LOSSES["cpo"], dict(beta=0.3, label_smoothing=0.1, cpo_alpha=0.0)),
    "sigmoid_smoothed_nll": (dict(loss_type="sigmoid", beta=0.3, label_smoothing=0.1, cpo_alpha=1.0),
                             LOSSES["cpo"], dict(beta=0.3, label_smoothing=0.1, cpo_alpha=1.0)),
    "hinge": (dict(loss_type="hinge", beta=0.3, cpo_alpha=0.0), LOSSES["cpo_hinge"], dict(beta=0.3, cpo_alpha=0.0)),
    "hinge_nll": (dict(loss_type="hinge", beta=0.3, cpo_alpha=0.5), LOSSES["cpo_hinge"], dict(beta=0.3, cpo_alpha=0.5)),
    "ipo": (dict(loss_type="ipo", beta=0.3, cpo_alpha=0.0), LOSSES["cpo_ipo"], dict(beta=0.3, cpo_alpha=0.0)),
    "ipo_nll": (dict(loss_type="ipo", beta=0.3, cpo_alpha=0.5), LOSSES["cpo_ipo"], dict(beta=0.3, cpo_alpha=0.5)),
    "simpo": (dict(loss_type="simpo", beta=2.0, simpo_gamma=0.7, cpo_alpha=0.0),
              LOSSES["simpo"], dict(beta=2.0, gamma=0.7)),
    "simpo_nll": (dict(loss_type="simpo", beta=2.0, simpo_gamma=0.7, cpo_alpha=0.3),
                  _cpo_simpo, dict(beta=2.0, gamma=0.7, cpo_alpha=0.3)),
    "alphapo": (dict(loss_type="alphapo", beta=2.0, simpo_gamma=0.7, alpha=0.3),
                LOSSES["alphapo"], dict(beta=2.0, alpha=0.3, gamma=0.7)),
}
# (case, hyperparameter) nudged by 1% on our side only: the result must stop matching TRL
NUDGES = [("sigmoid_smoothed", "label_smoothing"), ("sigmoid_smoothed_nll", "cpo_alpha"),
          ("simpo_nll", "cpo_alpha"), ("alphapo", "alpha")]
KTO_BETA, KTO_WEIGHTS = 0.1, dict(desirable_weight=0.8, undesirable_weight=1.5)


@pytest.fixture(scope="module")
def tiny(tiny_lm):
    "The saved tiny GPT-2 and tokenizer (conftest.py), a paired and an unpaired dataset of 8 rows each."
    d, tok = tiny_lm
    g = torch.Generator().manual_seed(1)
    pick = random_words(g)
    length = lambda: int(torch.randint(2, 7, (1,), generator=g))
    paired = [{"prompt": pick(3), "chosen": " " + pick(length()), "rejected": " " + pick(length())} for _ in range(8)]
    unpaired = [{"prompt": pick(3), "completion": " " + pick(length()), "label": i % 3 != 2} for i in range(8)]
    return d, tok, Dataset.from_list(paired), Dataset.from_list(unpaired)


def _perturb(model, seed):
    "Move a model's weights, so that log-probs and margins are not all alike."
    with torch.no_grad():
        g = torch.Generator().manual_seed(seed)
        for p in model.parameters(): p.add_(0.5 * torch.randn(p.shape, generator=g))


@pytest.fixture(scope="module")
def cpo_run(tiny, tmp_path_factory):
    "cpo_run(case) -> (TRL's loss, s_c, s_r, |y_c|, |y_r|) on one batch, one CPOTrainer per case, cached."
    path, tok, paired, _ = tiny
    cache = {}

    def run(case):
        if case in cache: return cache[case]
        args = cpo.CPOConfig(output_dir=str(tmp_path_factory.mktemp(case)), per_device_train_batch_size=8,
                             max_length=64, report_to="none", use_cpu=True, bf16=False, dataloader_num_workers=0,
                             **CPO_CASES[case][0])
        trainer = cpo.CPOTrainer(model=str(path), args=args, train_dataset=paired, processing_class=tok)
        _perturb(trainer.model, 2)  # CPO has no reference model
        batch = next(iter(trainer.get_train_dataloader()))
        trainer.model.train()
        with torch.no_grad(): trl_loss = trainer.compute_loss(trainer.model, batch)

        # the forward TRL ran: [chosen; rejected], padded to one width, labels -100 outside the completions
        cat = trainer.concatenated_inputs(batch, is_encoder_decoder=False, padding_value=trainer.pad_token_id)
        ids, labels = cat["concatenated_input_ids"], cat["concatenated_labels"]
        B, W = batch["chosen_input_ids"].shape
        assert torch.equal(ids[:B, :W], batch["chosen_input_ids"]) and len(ids) == 2 * B
        mask = labels != -100
        assert torch.equal(ids[mask], labels[mask]) and not mask[:, 0].any()  # a non-empty prompt is never scored
        last = mask.long().cumsum(-1).argmax(-1)  # each row's last completion token
        assert (ids.gather(1, last[:, None]) == tok.eos_token_id).all(), "TRL scores the EOS it appends"
        with torch.no_grad():
            logits = trainer.model(ids, attention_mask=cat["concatenated_attention_mask"], use_cache=False).logits
        s, n = sequence_logps(logits, ids, mask), completion_lengths(mask).float()
        (sc, sr), (lc, lr) = s.chunk(2), n.chunk(2)
        assert (sc - sr).abs().max() > 1 and (sc / lc - sr / lr).abs().max() > 0.1, "the test needs non-trivial margins"
        cache[case] = (trl_loss.float(), sc, sr, lc, lr)
        return cache[case]

    return run


@pytest.mark.parametrize("case", sorted(CPO_CASES))
def test_matches_trl_cpo_trainer(cpo_run, case):
    trl_loss, sc, sr, lc, lr = cpo_run(case)
    _, loss, hp = CPO_CASES[case]
    ours = loss(Pair(sc, sr, chosen_lengths=lc, rejected_lengths=lr), **hp).losses.mean()
    torch.testing.assert_close(ours, trl_loss, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("case,name", NUDGES)
def test_cpo_parity_detects_a_one_percent_change(cpo_run, case, name):
    trl_loss, sc, sr, lc, lr = cpo_run(case)
    _, loss, hp = CPO_CASES[case]
    ours = loss(Pair(sc, sr, chosen_lengths=lc, rejected_lengths=lr), **{**hp, name: 1.01 * hp[name]}).losses.mean()
    with pytest.raises(AssertionError):
        torch.testing.assert_close(ours, trl_loss, rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="module")
def kto_run(tiny, tmp_path_factory):
    "kto_run(loss_type) -> (TRL's loss, the batch, policy and reference models), one KTOTrainer per loss type, cached."
    path, tok, _, unpaired = tiny
    cache = {}

    def run(loss_type):
        if loss_type in cache: return cache[loss_type]
        args = trl.KTOConfig(output_dir=str(tmp_path_factory.mktemp(loss_type)), loss_type=loss_type, beta=KTO_BETA,
                             per_device_train_batch_size=8, report_to="none", use_cpu=True, bf16=False,
                             dataloader_num_workers=0, **KTO_WEIGHTS)
        trainer = trl.KTOTrainer(model=str(path), args=args, train_dataset=unpaired, processing_class=tok)
        _perturb(trainer.model, 2)
        _perturb(trainer.ref_model, 3)  # policy and reference both peaked, differently: rho of both signs, KL > 0
        batch = next(iter(trainer.get_train_dataloader()))
        trainer.model.train()
        with torch.no_grad(): trl_loss = trainer.compute_loss(trainer.model, batch)
        cache[loss_type] = (trl_loss.float(), batch, trainer.model, trainer.ref_model)
        return cache[loss_type]

    return run


def _kto_logps(batch, policy, ref, prefix=""):
    "Summed completion log-probs of the batch's `prefix` rows under the policy and the reference."
    ids, att, mask = batch[prefix + "input_ids"], batch[prefix + "attention_mask"], batch[prefix + "completion_mask"]
    with torch.no_grad():
        return tuple(sequence_logps(m(input_ids=ids, attention_mask=att).logits, ids, mask) for m in (policy, ref))


def test_matches_trl_kto_trainer_apo_zero_unpaired(kto_run):
    trl_loss, batch, policy, ref = kto_run("apo_zero_unpaired")
    pol, rf = _kto_logps(batch, policy, ref)
    desirable = batch["label"].bool()
    assert desirable.any() and not desirable.all() and (pol - rf).min() < -1 and (pol - rf).max() > 1
    ours = apo_zero_unpaired_loss(pol, rf, desirable, beta=KTO_BETA, **KTO_WEIGHTS).losses.mean()
    torch.testing.assert_close(ours, trl_loss, rtol=1e-5, atol=1e-5)


def test_matches_trl_kto_trainer_kto(kto_run):
    trl_loss, batch, policy, ref = kto_run("kto")
    pol, rf = _kto_logps(batch, policy, ref)
    pol_kl, ref_kl = _kto_logps(batch, policy, ref, "KL_")
    assert (pol_kl - ref_kl).mean() > 1, "the test needs a positive KL reference point (TRL clamps it at 0)"
    z0 = kto_kl_ref_point(pol_kl, ref_kl)
    ours = kto_loss(pol, rf, batch["label"].bool(), beta=KTO_BETA, kl_ref_point=z0, **KTO_WEIGHTS).losses.mean()
    torch.testing.assert_close(ours, trl_loss, rtol=1e-5, atol=1e-5)
