"""CTranslate2 Whisper files -> transformers folders: a tiny random Whisper written by CTranslate2's own
converter (the test extra installs ctranslate2) comes back through adfd's reader tensor for tensor."""

from __future__ import annotations

import json
import struct

import pytest
import torch

from adfd_core.frontends.ct2_whisper import ConversionError, convert, read_model_bin

SPECIAL = ["<|endoftext|>", "<|startoftranscript|>", "<|en|>", "<|translate|>", "<|transcribe|>", "<|startoflm|>",
           "<|startofprev|>", "<|nocaptions|>", "<|notimestamps|>"]  # fmt: skip


def tiny_whisper(folder):
    """A random Whisper (d_model 16, 2 encoder and 1 decoder layers; every tensor random, the two conv
    biases zero so CTranslate2 aliases one to the other) with a byte-level tokenizer of 265 tokens."""
    from transformers import WhisperConfig, WhisperForConditionalGeneration, WhisperTokenizer
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    folder.mkdir()
    (folder / "vocab.json").write_text(json.dumps({c: i for i, c in enumerate(bytes_to_unicode().values())}))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = WhisperTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"))
    tokenizer.add_special_tokens({"additional_special_tokens": SPECIAL})
    config = WhisperConfig(
        vocab_size=len(tokenizer) + 10, d_model=16, encoder_layers=2, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=24, max_source_positions=1500, max_target_positions=32,
        eos_token_id=256, pad_token_id=256, bos_token_id=256, decoder_start_token_id=257,
    )  # fmt: skip
    torch.manual_seed(0)
    model = WhisperForConditionalGeneration(config)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.zeros_like(p) if name.endswith(("conv1.bias", "conv2.bias")) else 0.5 * torch.randn_like(p))
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return model.eval()


@pytest.fixture(scope="module")
def original(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ct2") / "hf"
    return folder, tiny_whisper(folder)


def ct2_convert(folder, out, quantization):
    ctranslate2 = pytest.importorskip("ctranslate2")
    ctranslate2.converters.TransformersConverter(str(folder)).convert(str(out), quantization=quantization)
    return out


@pytest.mark.parametrize("quantization", ["float32", "float16"])
def test_ctranslate2_file_round_trips_exactly(original, tmp_path, quantization):
    from transformers import WhisperForConditionalGeneration

    folder, model = original
    ct2 = ct2_convert(folder, tmp_path / "ct2", quantization)
    stored = read_model_bin(ct2 / "model.bin")
    assert stored.spec == "WhisperSpec" and stored.aliases["decoder/projection/weight"] == "decoder/embeddings/weight"
    assert stored.aliases["encoder/conv2/bias"] == "encoder/conv1/bias" or stored.aliases["encoder/conv1/bias"] == "encoder/conv2/bias"
    back = WhisperForConditionalGeneration.from_pretrained(convert(ct2, tmp_path / "back")).eval()
    shape = {"d_model": 16, "encoder_layers": 2, "decoder_layers": 1, "encoder_ffn_dim": 32, "decoder_ffn_dim": 24, "vocab_size": 275}
    assert {key: getattr(back.config, key) for key in shape} == shape
    want, got = model.state_dict(), back.state_dict()
    assert set(got) == set(want)
    cast = (lambda t: t.half().float()) if quantization == "float16" else (lambda t: t)
    unequal = [name for name in want if not torch.equal(got[name], cast(want[name]))]
    assert not unequal, unequal
    mel, tokens = torch.randn(2, 80, 3000), torch.tensor([[257, 264, 40, 41], [257, 264, 50, 3]])
    with torch.no_grad():
        if quantization == "float32":
            assert torch.equal(back(mel, decoder_input_ids=tokens).logits, model(mel, decoder_input_ids=tokens).logits)
    generation = back.generation_config
    assert (generation.decoder_start_token_id, generation.eos_token_id, generation.no_timestamps_token_id) == (257, 256, 264)
    assert generation.is_multilingual is False


def test_tokenizer_and_feature_extractor_travel(original, tmp_path):
    from transformers import WhisperFeatureExtractor, WhisperTokenizer

    folder, _ = original
    ct2 = ct2_convert(folder, tmp_path / "ct2", "float32")
    (ct2 / "tokenizer.json").write_bytes((folder / "tokenizer.json").read_bytes())  # faster-whisper's folders carry it
    out = convert(ct2, tmp_path / "back")
    tokenizer = WhisperTokenizer.from_pretrained(out)
    assert tokenizer.decode(tokenizer("hi there").input_ids, skip_special_tokens=True) == "hi there"
    assert WhisperFeatureExtractor.from_pretrained(out).feature_size == 80


def _header(version=6, spec="WhisperSpec") -> bytes:
    name = spec.encode() + b"\0"
    return struct.pack("<I", version) + struct.pack("<H", len(name)) + name + struct.pack("<I", 3)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_header(version=2) + struct.pack("<II", 0, 0), r"binary version 2; this reader knows version 6"),
        (_header() + struct.pack("<I", 1) + b"\x05\x00ab", r"truncated CTranslate2 file"),
        (_header() + struct.pack("<II", 0, 0) + b"junk", r"4 bytes after the last alias"),
    ],
)
def test_foreign_files_are_refused_in_one_line(tmp_path, data, message):
    path = tmp_path / "model.bin"
    path.write_bytes(data)
    with pytest.raises(ConversionError, match=message):
        read_model_bin(path)


def test_other_models_are_refused(tmp_path):
    (tmp_path / "model.bin").write_bytes(_header(spec="TransformerSpec") + struct.pack("<II", 0, 0))
    with pytest.raises(ConversionError, match=r"a CTranslate2 'TransformerSpec' model, not WhisperSpec"):
        convert(tmp_path, tmp_path / "out")
