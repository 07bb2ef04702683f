"""prefbench_lib.lm_data: file round trips, the malformed-row table, and interop with TRL in both directions, offline.

TRL 1.16 (a dev dependency) is the peer: a preference file we write must train a DPOTrainer step unchanged,
and files in TRL's documented formats that we did not write must read and validate.
"""
import os

import pytest
import torch
from datasets import Dataset, load_dataset

from prefbench_lib.lm_data import (Language, build_tokenizer, dataset_kind, load_tokenizer, preference_dataset, prompt_dataset,
                                   ranked_dataset, read_dataset, save_tokenizer, sft_dataset, unpaired_dataset, validate_dataset,
                                   write_dataset)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
LANG = Language()
BUILDERS = {  # name -> (dataset, its kind)
    "sft": (lambda: sft_dataset(LANG, 12, seed=1), "sft"),
    "sft_conversational": (lambda: sft_dataset(LANG, 12, seed=1, conversational=True), "sft"),
    "preference": (lambda: preference_dataset(LANG, 12, "rare_peak", seed=2), "preference"),
    "preference_conversational": (lambda: preference_dataset(LANG, 12, "mode_peak", seed=2, conversational=True), "preference"),
    "unpaired": (lambda: unpaired_dataset(LANG, 6, "rare_peak", seed=3), "unpaired"),
    "ranked": (lambda: ranked_dataset(LANG, 12, "rare_peak", seed=4, k=5, step_length=3), "ranked"),
    "prompt": (lambda: prompt_dataset(LANG, 12, seed=5), "prompt"),
    "prompt_conversational": (lambda: prompt_dataset(LANG, 12, seed=5, conversational=True), "prompt"),
}


@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".parquet"])
@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_round_trip(name, suffix, tmp_path):
    build, kind = BUILDERS[name]
    ds = build()
    path = write_dataset(ds, tmp_path / "nested" / f"data{suffix}")
    assert path.is_file()
    back = read_dataset(path)
    assert back.to_list() == ds.to_list()
    assert dataset_kind(back) == kind
    assert read_dataset(path, kind).to_list() == ds.to_list()


def test_tokenizer_round_trip(tmp_path):
    tok = build_tokenizer(LANG)
    back = load_tokenizer(save_tokenizer(tok, tmp_path / "tok"))
    assert back.get_vocab() == tok.get_vocab() and back.chat_template == tok.chat_template
    assert (back.pad_token, back.bos_token, back.eos_token, back.unk_token) == ("<pad>", "<bos>", "<eos>", "<unk>")
    for x, y in LANG.sample(50, seed=0):
        text = x + y + "<eos>"
        assert back(text)["input_ids"] == tok(text)["input_ids"]
        assert back(x + y)["input_ids"] == back(x)["input_ids"] + back(y)["input_ids"]


OK_PREF = {"prompt": "shift 1 :", "chosen": " a", "rejected": " b"}
OK_RANKED = {"prompt": "shift 1 :", "completions": [" a b", " c"], "scores": [0.9, 0.1], "steps": [[" a", " b"], [" c"]]}
USER = [{"role": "user", "content": "shift 1 :"}]
MALFORMED = {  # case -> (rows, kind, bad row, bad field)
    "missing key": ([OK_PREF, {"prompt": "shift 1 :", "chosen": " a"}], None, 1, "rejected"),
    "None value": ([OK_PREF, OK_PREF, OK_PREF | {"chosen": None}], None, 2, "chosen"),
    "prompt not a string": ([OK_PREF | {"prompt": 7}], None, 0, "prompt"),
    "empty prompt": ([OK_PREF | {"prompt": " "}], None, 0, "prompt"),
    "chosen not a string": ([OK_PREF, OK_PREF | {"chosen": 3}], None, 1, "chosen"),
    "empty chosen": ([OK_PREF | {"chosen": ""}], None, 0, "chosen"),
    "empty rejected": ([OK_PREF, OK_PREF | {"rejected": "   "}], None, 1, "rejected"),
    "empty sft completion": ([{"prompt": "shift 1 :", "completion": ""}], None, 0, "completion"),
    "label not a bool": ([{"prompt": "shift 1 :", "completion": " a", "label": True}, {"prompt": "shift 1 :", "completion": " a", "label": 1}],
                         None, 1, "label"),
    "one completion": ([OK_RANKED | {"completions": [" a"], "scores": [1.0], "steps": [[" a"]]}], None, 0, "completions"),
    "scores length": ([OK_RANKED | {"scores": [0.9]}], None, 0, "scores"),
    "scores not numbers": ([OK_RANKED | {"scores": [0.9, None]}], None, 0, "scores[1]"),
    "scores a bool": ([OK_RANKED | {"scores": [True, 0.1]}], None, 0, "scores[0]"),
    "scores unsorted": ([OK_RANKED, OK_RANKED | {"scores": [0.1, 0.9]}], None, 1, "scores"),
    "scores NaN": ([OK_RANKED | {"scores": [float("nan"), 0.1]}], None, 0, "scores[0]"),
    "steps length": ([OK_RANKED | {"steps": [[" a b"]]}], None, 0, "steps"),
    "steps do not join": ([OK_RANKED | {"steps": [[" a", "b"], [" c"]]}], None, 0, "steps[0]"),
    "empty completion in a list": ([OK_RANKED | {"completions": [" a b", ""], "steps": [[" a b"], [""]]}], None, 0, "completions[1]"),
    "message without content": ([{"prompt": USER, "chosen": [{"role": "assistant"}], "rejected": [{"role": "assistant", "content": "b"}]}],
                                None, 0, "chosen[0]"),
    "message not a dict": ([{"prompt": USER, "chosen": ["a"], "rejected": [{"role": "assistant", "content": "b"}]}], None, 0, "chosen[0]"),
    "role not a string": ([{"prompt": [{"role": 1, "content": "shift 1 :"}], "completion": [{"role": "assistant", "content": "a"}]}],
                          None, 0, "prompt[0]"),
    "conversational prompt, string chosen": ([OK_PREF | {"prompt": USER}], None, 0, "chosen"),
    "empty message list": ([{"prompt": USER, "completion": []}], None, 0, "completion"),
    "empty message content": ([{"prompt": USER, "completion": [{"role": "assistant", "content": ""}]}], None, 0, "completion"),
    "implicit prompt, no shared prefix": ([{"chosen": "shift 1 : a", "rejected": "shift 1 : b"}, {"chosen": "a b", "rejected": "c b"}],
                                          None, 1, "prompt"),
    "implicit prompt, chosen is the prefix": ([{"chosen": "shift 1 :", "rejected": "shift 1 : b"}], None, 0, "chosen"),
    "wrong kind requested": ([OK_PREF], "unpaired", 0, "completion"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_rows_name_row_and_field(case):
    rows, kind, i, field = MALFORMED[case]
    with pytest.raises(ValueError) as err:
        validate_dataset(rows, kind)
    assert f"row {i}, field '{field}'" in str(err.value)


def test_malformed_file_fails_on_read(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"prompt": "shift 1 :", "chosen": " a", "rejected": " b"}\n{"prompt": "shift 2 :", "chosen": " a", "rejected": ""}\n')
    with pytest.raises(ValueError, match="row 1, field 'rejected'"):
        read_dataset(path)
    with pytest.raises(ValueError, match="match no known format"):
        validate_dataset([{"text": "shift 1 : a"}])


def test_nothing_is_dropped():
    ds = preference_dataset(LANG, 5, "rare_peak").add_column("id", list(range(5)))
    assert validate_dataset(ds).to_list() == ds.to_list()  # extra columns are kept


# --- TRL interop ---------------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    "A tiny GPT-2 over the language's vocabulary, saved with its tokenizer."
    from transformers import GPT2Config, GPT2LMHeadModel
    d = tmp_path_factory.mktemp("tiny_lm")
    tok = build_tokenizer(LANG)
    save_tokenizer(tok, d)
    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=len(tok), n_positions=32, n_embd=16, n_layer=1, n_head=2, bos_token_id=tok.bos_token_id,
                     eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    GPT2LMHeadModel(cfg).save_pretrained(d)
    return d


@pytest.mark.parametrize("conversational", [False, True], ids=["standard", "conversational"])
def test_trl_dpo_trains_on_our_file(tiny_model, tmp_path, conversational):
    "A preference JSONL from write_dataset loads with load_dataset and trains one DPOTrainer step, unchanged."
    trl = pytest.importorskip("trl")
    path = write_dataset(preference_dataset(LANG, 8, "rare_peak", conversational=conversational), tmp_path / "pref.jsonl")
    ds = load_dataset("json", data_files=str(path), split="train")
    assert trl.data_utils.is_conversational(ds[0]) == conversational
    args = trl.DPOConfig(output_dir=str(tmp_path / "out"), per_device_train_batch_size=4, max_steps=1, report_to="none", use_cpu=True,
                         bf16=False, dataloader_num_workers=0, save_strategy="no")
    trainer = trl.DPOTrainer(model=str(tiny_model), args=args, train_dataset=ds, processing_class=load_tokenizer(tiny_model))
    row = trainer.train_dataset[0]  # TRL found the completion after the whole prompt: 3 prompt words; chosen ends with <eos>
    assert len(row["prompt_ids"]) == 3 and row["chosen_ids"][-1] == trainer.processing_class.eos_token_id
    out = trainer.train()
    assert out.global_step == 1 and torch.isfinite(torch.tensor(out.training_loss))


def test_trl_extract_prompt_agrees_on_conversations():
    "For conversational implicit prompts our extraction is TRL's extract_prompt."
    trl = pytest.importorskip("trl")
    full = preference_dataset(LANG, 6, "mode_peak", conversational=True).to_list()
    implicit = [{"chosen": r["prompt"] + r["chosen"], "rejected": r["prompt"] + r["rejected"]} for r in full]
    ours = validate_dataset(implicit).to_list()
    assert ours == [trl.data_utils.extract_prompt(r) for r in implicit] == full


TRL_DOC_ROWS = {  # TRL's documented formats, written by hand (https://huggingface.co/docs/trl/dataset_formats)
    "preference": ([{"prompt": "The sky is", "chosen": " blue.", "rejected": " green."}], "preference"),
    "preference_conversational": ([{"prompt": [{"role": "user", "content": "What color is the sky?"}],
                                    "chosen": [{"role": "assistant", "content": "It is blue."}],
                                    "rejected": [{"role": "assistant", "content": "It is green."}]}], "preference"),
    "prompt_completion": ([{"prompt": "The sky is", "completion": " blue."}], "sft"),
    "prompt_completion_conversational": ([{"prompt": [{"role": "user", "content": "What color is the sky?"}],
                                           "completion": [{"role": "assistant", "content": "It is blue."}]}], "sft"),
    "unpaired": ([{"prompt": "The sky is", "completion": " blue.", "label": True},
                  {"prompt": "The sky is", "completion": " green.", "label": False}], "unpaired"),
    "prompt_only": ([{"prompt": "The sky is"}], "prompt"),
    "prompt_only_conversational": ([{"prompt": [{"role": "user", "content": "What color is the sky?"}]}], "prompt"),
}


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
@pytest.mark.parametrize("name", sorted(TRL_DOC_ROWS))
def test_reads_trl_format_written_by_datasets(name, suffix, tmp_path):
    rows, kind = TRL_DOC_ROWS[name]
    path = tmp_path / f"{name}{suffix}"
    ds = Dataset.from_list(rows)
    ds.to_json(str(path)) if suffix == ".jsonl" else ds.to_parquet(str(path))  # datasets' own writer, not ours
    back = read_dataset(path)
    assert back.to_list() == rows and dataset_kind(back) == kind


@pytest.mark.parametrize("conversational", [False, True], ids=["standard", "conversational"])
def test_reads_trl_implicit_prompt(conversational, tmp_path):
    "TRL's implicit-prompt preference format reads, with the prompt made explicit at the longest common prefix."
    if conversational:
        q = [{"role": "user", "content": "What color is the sky?"}]
        rows = [{"chosen": q + [{"role": "assistant", "content": "It is blue."}], "rejected": q + [{"role": "assistant", "content": "It is green."}]}]
        want = {"prompt": q, "chosen": rows[0]["chosen"][1:], "rejected": rows[0]["rejected"][1:]}
    else:
        rows = [{"chosen": "The sky is blue.", "rejected": "The sky is green."}]
        want = {"prompt": "The sky is", "chosen": " blue.", "rejected": " green."}
    path = tmp_path / "implicit.jsonl"
    Dataset.from_list(rows).to_json(str(path))
    assert read_dataset(path).to_list() == [want]
    assert read_dataset(path, "preference").to_list() == [want]
