import torch
from triton.testing import do_bench
from flash_attention import flash_attn_func
from flash_attention.features import Features
from flash_attention.ops import configs
from flash_attention.ops.backward import attention_backward
from flash_attention.ops.forward import attention_forward
for dt in (torch.float16, torch.bfloat16):
    for s in (1024, 2048):
        b, h, d = 16384 // s, 16, 128
        q, k, v, do = (torch.randn(b, s, h, d, device="cuda", dtype=dt) for _ in range(4))
        f = Features(d ** -0.5, True)
        o, lse = attention_forward(q, k, v, f)
        fl = 2.5 * 2 * b * h * s * s * d
        t = do_bench(lambda: attention_backward(do, q, k, v, o, lse, f), warmup=25, rep=100, return_mode="median")
        qq, kk, vv = (x.detach().requires_grad_() for x in (q, k, v))
        tf = do_bench(lambda: flash_attn_func(qq, kk, vv, causal=True), warmup=25, rep=100, return_mode="median")
        tfb = do_bench(lambda: torch.autograd.grad(flash_attn_func(qq, kk, vv, causal=True), (qq, kk, vv), do), warmup=25, rep=100, return_mode="median")
        print(dt, s, "bwd_only %.0f" % (fl / t * 1e-9), "bench-style bwd %.0f" % (fl / (tfb - tf) * 1e-9), "fwd %.0f" % (fl / 2.5 / tf * 1e-9), flush=True)
        from torch.profiler import profile, ProfilerActivity
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            for _ in range(5):
                torch.autograd.grad(flash_attn_func(qq, kk, vv, causal=True), (qq, kk, vv), do)
            torch.cuda.synchronize()
        print("   ", "; ".join(f"{e.key[:28]}={e.device_time_total/5:.0f}us" for e in prof.key_averages() if e.device_time_total > 0))
print({k[0]: v for k, v in configs._chosen.items()})
