"""transformers backend: tiny random-init models give the same logits and gradients as under sdpa.

No weights are downloaded: models are built from configs, and the hub is set offline before transformers loads.
"""

import os
from types import SimpleNamespace
from unittest import mock

import pytest
import torch

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
transformers = pytest.importorskip("transformers")

from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM  # noqa: E402
from transformers.integrations.sdpa_attention import sdpa_attention_forward  # noqa: E402
from transformers.masking_utils import sdpa_mask, sliding_window_causal_mask_function  # noqa: E402

from flash_attention import use_backend  # noqa: E402
from flash_attention.integrations import transformers as fa_hf  # noqa: E402

VOCAB, SEQ = 128, 16


@pytest.fixture(scope="module")
def name() -> str:
    return fa_hf.register()


def _llama() -> torch.nn.Module:
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                         attn_implementation="sdpa")
    return LlamaForCausalLM(config).float().eval()


def _gpt2() -> torch.nn.Module:
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=VOCAB, n_embd=64, n_head=4, n_layer=2, n_positions=64,
                        attn_implementation="sdpa")
    return GPT2LMHeadModel(config).float().eval()  # eval: GPT-2's dropouts would differ between the two runs


def _padding(kind: str) -> torch.Tensor:
    """A 2-D padding mask (1 = token) for batch 3: none, and 5 or 3 pads on the left or right."""
    mask = torch.ones(3, SEQ, dtype=torch.long)
    if kind == "left":
        mask[1, :5], mask[2, :3] = 0, 0
    elif kind == "right":
        mask[1, -5:], mask[2, -3:] = 0, 0
    return mask


def _run(model: torch.nn.Module, impl: str, ids: torch.Tensor, mask: torch.Tensor):
    """Logits and parameter gradients of a cross-entropy on the non-padded positions under ``impl``."""
    model.set_attn_implementation(impl)
    assert model.config._attn_implementation == impl
    model.zero_grad(set_to_none=True)
    logits = model(ids, attention_mask=mask).logits
    keep = mask.bool()
    loss = torch.nn.functional.cross_entropy(logits[keep], ids.roll(-1, dims=1)[keep])
    loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
    return logits.detach()[keep], grads


@pytest.mark.parametrize("backend", ["torch", "triton"])
@pytest.mark.parametrize("build, pad", [(_llama, "none"), (_llama, "left"), (_gpt2, "none"), (_gpt2, "right")],
                         ids=["llama", "llama-leftpad", "gpt2", "gpt2-rightpad"])
def test_model_matches_sdpa(name, build, pad, backend, monkeypatch, kernel_device):
    # The kernels run where they can: on the GPU when there is one, else under the interpreter on CPU.
    device = kernel_device if backend == "triton" else "cpu"
    model = build().to(device)
    ids = torch.randint(0, VOCAB, (3, SEQ), generator=torch.Generator().manual_seed(1)).to(device)
    mask = _padding(pad)
    mask = mask.to(device) if mask is not None else None

    calls = []
    real = fa_hf.flash_attn_func

    def spy(q, k, v, **kw):
        calls.append((q.shape, k.shape, kw["causal"], kw["attn_mask"]))
        return real(q, k, v, **kw)

    monkeypatch.setattr(fa_hf, "flash_attn_func", spy)
    ref_logits, ref_grads = _run(model, "sdpa", ids, mask)
    assert not calls
    with use_backend(backend):
        logits, grads = _run(model, name, ids, mask)

    assert len(calls) == model.config.num_hidden_layers
    for q_shape, k_shape, causal, attn_mask in calls:
        # GQA runs on the kv heads as they are (Llama: 2 of them for 4 query heads), never repeated
        assert k_shape[2] == getattr(model.config, "num_key_value_heads", q_shape[2])
        if pad == "none":  # no mask materialised: the causal flag does the work
            assert causal and attn_mask is None
        else:
            assert not causal and attn_mask.dtype == torch.bool and attn_mask.shape == (3, 1, SEQ, SEQ)

    torch.testing.assert_close(logits, ref_logits, atol=1e-4, rtol=0)
    assert grads.keys() == ref_grads.keys()
    scale = max(g.abs().max().item() for g in ref_grads.values())
    for n, g in grads.items():
        torch.testing.assert_close(g, ref_grads[n], atol=1e-4 * scale, rtol=0, msg=lambda m, n=n: f"{n}: {m}")


def _module(causal: bool = True, training: bool = False, **config) -> torch.nn.Module:
    module = torch.nn.Module()
    module.is_causal, module.num_key_value_groups = causal, 2
    module.config = SimpleNamespace(**config)
    return module.train(training)


def _qkv(seqlen_q: int, seqlen_k: int, batch: int = 2, dtype=torch.float32):
    q = torch.randn(batch, 4, seqlen_q, 32, dtype=dtype)
    k, v = (torch.randn(batch, 2, seqlen_k, 32, dtype=dtype) for _ in range(2))
    return q, k, v


def test_output_layout_and_float_mask():
    """Output is (batch, seq_q, heads, head_dim) like sdpa's; an additive float mask (with a real bias on the
    visible entries) gives what sdpa gives for it."""
    q, k, v = _qkv(12, 12)
    bias = torch.randn(2, 1, 12, 12)
    visible = torch.rand(2, 1, 12, 12) > 0.3
    visible[..., 0] = True  # sdpa gives NaN for rows with no key; ours gives 0
    float_mask = torch.where(visible, bias, torch.finfo(torch.float32).min)
    module = _module()
    ref, _ = sdpa_attention_forward(module, q, k, v, float_mask, scaling=0.3)
    out, weights = fa_hf.flash_attention_forward(module, q, k, v, float_mask, scaling=0.3)
    assert weights is None and out.shape == (2, 12, 4, 32)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


def test_static_cache_prefill_slices_empty_keys():
    """No mask and more keys than queries: transformers' prefill into an empty static cache (sdpa aligns its
    causal mask top-left there)."""
    q, k, v = _qkv(6, 10)
    module = _module()
    ref, _ = sdpa_attention_forward(module, q, k, v, None)
    out, _ = fa_hf.flash_attention_forward(module, q, k, v, None)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


def test_decoding_sees_all_keys():
    q, k, v = _qkv(1, 9)
    module = _module()
    ref, _ = sdpa_attention_forward(module, q, k, v, None)
    out, _ = fa_hf.flash_attention_forward(module, q, k, v, None)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


def test_sliding_window_matches_transformers_mask():
    """Without a mask, ``sliding_window`` becomes our window: the same keys as transformers' own window mask."""
    q, k, v = _qkv(20, 20)
    mask = sdpa_mask(batch_size=2, q_length=20, kv_length=20, mask_function=sliding_window_causal_mask_function(5),
                     allow_is_causal_skip=False)
    module = _module()
    ref, _ = sdpa_attention_forward(module, q, k, v, mask)
    out, _ = fa_hf.flash_attention_forward(module, q, k, v, None, sliding_window=5)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


def test_softcap_from_kwarg_and_config():
    q, k, v = _qkv(10, 10)
    scores = torch.einsum("bhqd,bhkd->bhqk", q, k.repeat_interleave(2, dim=1)) * 0.5
    scores = 2.0 * torch.tanh(scores / 2.0)
    scores = scores.masked_fill(~torch.ones(10, 10, dtype=torch.bool).tril(), float("-inf"))
    ref = (scores.softmax(-1) @ v.repeat_interleave(2, dim=1)).transpose(1, 2)
    from_kwarg, _ = fa_hf.flash_attention_forward(_module(), q, k, v, None, scaling=0.5, softcap=2.0)
    from_config, _ = fa_hf.flash_attention_forward(_module(attn_logit_softcapping=2.0), q, k, v, None, scaling=0.5)
    torch.testing.assert_close(from_kwarg, ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(from_config, ref, atol=1e-5, rtol=1e-5)


def test_dropout_only_while_training():
    q, k, v = _qkv(8, 8)
    eval_out, _ = fa_hf.flash_attention_forward(_module(training=False), q, k, v, None, dropout=0.5)
    no_dropout, _ = fa_hf.flash_attention_forward(_module(), q, k, v, None)
    torch.testing.assert_close(eval_out, no_dropout)
    train_out, _ = fa_hf.flash_attention_forward(_module(training=True), q, k, v, None, dropout=0.5)
    assert not torch.allclose(train_out, no_dropout)


@pytest.mark.parametrize("how", ["kwarg", "env", "off"])
def test_deterministic_reaches_the_backward(how, monkeypatch):
    """``deterministic=True`` from the model's kwargs, or ``FLASH_ATTENTION_DETERMINISTIC=1`` (which transformers
    reads for flash-attn), reaches the backward's Features."""
    import flash_attention.library as library

    q, k, v = (t.requires_grad_() for t in _qkv(8, 8))
    kw = {"deterministic": True} if how == "kwarg" else {}
    monkeypatch.setenv("FLASH_ATTENTION_DETERMINISTIC", "1" if how == "env" else "0")
    with mock.patch.object(library, "run_backward", wraps=library.run_backward) as spy:
        out, _ = fa_hf.flash_attention_forward(_module(), q, k, v, None, **kw)
        out.sum().backward()
    assert spy.call_args.args[6].deterministic is (how != "off")


def test_register_rejects_flash_names():
    """transformers takes any name containing "flash" for a flash-attn package or hub kernel and fails to load
    it when the name is set on a model."""
    with pytest.raises(ValueError, match="flash"):
        fa_hf.register("flash_attention_triton")


def test_import_does_not_load_transformers():
    import subprocess
    import sys

    code = "import sys, flash_attention, flash_attention.integrations; assert 'transformers' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=os.path.dirname(os.path.dirname(
        os.path.dirname(os.path.abspath(__file__)))))


def test_packed_sequences_use_varlen(name):
    """Packed documents (position_ids restart, cu_seq_lens kwargs as DataCollatorWithFlattening gives them) match
    each document run alone under sdpa."""
    model = _llama()
    lens = [5, 11]
    docs = [torch.randint(0, VOCAB, (1, n)) for n in lens]
    ids = torch.cat(docs, dim=1)
    pos = torch.cat([torch.arange(n) for n in lens])[None]
    cu = torch.tensor([0, 5, 16], dtype=torch.int32)
    with torch.no_grad():
        alone = torch.cat([model(d).logits for d in docs], dim=1)
        model.set_attn_implementation(name)
        packed = model(ids, position_ids=pos, cu_seq_lens_q=cu, cu_seq_lens_k=cu, max_length_q=11,
                       max_length_k=11).logits
        model.set_attn_implementation("sdpa")
    torch.testing.assert_close(packed, alone, atol=2e-5, rtol=1e-4)
