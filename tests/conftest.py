"""Fixtures shared by the test files: a tiny causal LM saved locally, for the TRL parity tests."""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing below downloads: the model and tokenizer are built here

import pytest
import torch

WORDS = "the a cat dog sat ran on under mat log red blue big small quickly slowly yes no".split()


@pytest.fixture(scope="session")
def tiny_lm(tmp_path_factory):
    "A 2-layer GPT-2 and a word-level tokenizer over WORDS, saved to a temporary directory: (directory, tokenizer)."
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast
    d = tmp_path_factory.mktemp("tiny_lm")
    vocab = {w: i for i, w in enumerate(["<pad>", "<eos>", "<unk>", *WORDS])}
    tk = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, eos_token="<eos>", pad_token="<pad>", unk_token="<unk>")
    tok.save_pretrained(d)
    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=len(vocab), n_positions=64, n_embd=32, n_layer=2, n_head=2,
                     resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=1, eos_token_id=1, pad_token_id=0)
    GPT2LMHeadModel(cfg).save_pretrained(d)
    return d, tok


def random_words(generator: torch.Generator):
    "pick(n): n words of WORDS drawn with `generator`, joined by spaces."
    return lambda n: " ".join(WORDS[i] for i in torch.randint(0, len(WORDS), (n,), generator=generator).tolist())
