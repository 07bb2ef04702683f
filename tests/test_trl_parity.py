"""prefbench's losses against TRL's DPOTrainer (a trusted peer), end to end on a tiny model.

For every loss_type TRL 1.16 shares with prefbench, a DPOTrainer computes its loss on a batch;
prefbench computes the same batch's log-probs with `sequence_logps` and the loss with `LOSSES[name]`.
The two must agree. This checks both the formulas and our next-token shift against TRL's.
Everything is built locally: a word-level tokenizer and a GPT-2 with 2 layers, saved to a temp dir.
"""
import os

import pytest
import torch

trl = pytest.importorskip("trl")
from datasets import Dataset
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

from prefbench_lib.core import completion_lengths, sequence_logps
from prefbench_lib.losses import LOSSES

os.environ.setdefault("HF_HUB_OFFLINE", "1")
WORDS = "the a cat dog sat ran on under mat log red blue big small quickly slowly yes no".split()
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
def tiny(tmp_path_factory):
    "A saved tiny GPT-2 and tokenizer, and a small preference dataset."
    d = tmp_path_factory.mktemp("tiny")
    vocab = {w: i for i, w in enumerate(["<pad>", "<eos>", "<unk>", *WORDS])}
    tk = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, eos_token="<eos>", pad_token="<pad>", unk_token="<unk>")
    tok.save_pretrained(d)
    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=len(vocab), n_positions=64, n_embd=32, n_layer=2, n_head=2,
                     resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=1, eos_token_id=1, pad_token_id=0)
    GPT2LMHeadModel(cfg).save_pretrained(d)
    g = torch.Generator().manual_seed(1)
    pick = lambda n: " ".join(WORDS[i] for i in torch.randint(0, len(WORDS), (n,), generator=g).tolist())
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
    ours_loss = LOSSES[loss_type](pc, pr, rc, rr, beta=beta, chosen_lengths=lc, rejected_lengths=lr, **ours).losses.mean()
    torch.testing.assert_close(ours_loss, trl_loss.float(), rtol=1e-5, atol=1e-5)
