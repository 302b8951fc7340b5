"""LoRA adapters (peft) under the engine: Lemma 4 on every step, the target frozen, less memory
than full fine-tuning, and checkpoints of the adapters only that resume exactly."""

import copy

import pytest
import torch

pytest.importorskip("peft")

from transformers import GPT2Config, GPT2LMHeadModel  # noqa: E402

from pareto import checkpoint  # noqa: E402
from pareto.core.combiners import build_combiner  # noqa: E402
from pareto.core.engine import UnlearnEngine  # noqa: E402
from pareto.core.lr import LR_RULES  # noqa: E402
from pareto.core.objectives import OBJECTIVES  # noqa: E402
from pareto.core.optim import build_optimizer  # noqa: E402
from pareto.data.qa import Batches, Encoded  # noqa: E402
from pareto.lm import LM_TASK  # noqa: E402
from pareto.memory import apply_lora, enable_checkpointing, estimate_bytes  # noqa: E402


def gpt2(seed=0):
    torch.manual_seed(seed)
    return GPT2LMHeadModel(GPT2Config(vocab_size=101, n_positions=32, n_embd=64, n_layer=2, n_head=4,
                                      resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0))


def examples(n, seed, t=12):
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        ids = torch.randint(3, 101, (t,), generator=g).tolist()
        out.append(Encoded(ids, [-100] * (t // 2) + ids[t // 2:], t // 2))
    return out


def streams(seed=0):
    return Batches(examples(8, 1), 4, 0, seed), Batches(examples(16, 2), 4, 0, seed + 1)


def build(model, lr_rule="autolr"):
    params = [p for p in model.parameters() if p.requires_grad]
    opt = build_optimizer("adam", params, lr=1e-3)
    ga = OBJECTIVES.build("ga")
    ga.task = LM_TASK
    return UnlearnEngine(model, build_combiner("ngdiff"), ga, LR_RULES.build(lr_rule, **({"every": 2} if lr_rule == "autolr" else {})),
                         opt, lr=1e-3, retain_loss=LM_TASK.loss), opt


def persistent_bytes(engine, opt) -> int:
    """What the step keeps between steps besides the model: gradient buffers and optimizer state."""
    state = sum(t.numel() * t.element_size() for s in opt.state.values() for t in s.values()
                if isinstance(t, torch.Tensor))
    return engine.gradient_buffer_bytes() * 2 + state  # g_R's buffer and the .grad buffer


def test_ngdiff_with_lora_keeps_lemma4_freezes_the_target_and_needs_less_memory():
    base = gpt2()
    frozen = {n: p.detach().clone() for n, p in base.named_parameters()}
    model = apply_lora(copy.deepcopy(base), r=4, alpha=8, target_modules=["c_attn", "c_proj", "c_fc"])
    n_all = sum(p.numel() for p in model.parameters())
    n_lora = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert 0 < n_lora < n_all / 5
    engine, opt = build(model)
    forget, retain = streams()
    for _ in range(6):
        row = engine.step(retain.next(), forget.next())
        assert row["dot_r_upd"] >= 0 >= row["dot_f_upd"]  # Lemma 4 on the adapters' gradients
    merged_names = {n.replace("base_model.model.", "").replace(".base_layer", ""): p
                    for n, p in model.named_parameters() if not p.requires_grad}
    for name, before in frozen.items():  # the target itself never moves
        torch.testing.assert_close(merged_names[name], before, rtol=0, atol=0)
    assert any(p.abs().sum() > 0 for n, p in model.named_parameters() if "lora_B" in n)  # B starts at 0
    assert engine.gradient_buffer_bytes() == 4 * n_lora

    full_engine, full_opt = build(gpt2())
    f2, r2 = streams()
    full_engine.step(r2.next(), f2.next())
    engine_bytes, full_bytes = persistent_bytes(engine, opt), persistent_bytes(full_engine, full_opt)
    assert engine_bytes < full_bytes / 5
    assert estimate_bytes(model, "adam")["gradient_buffers"] == 2 * 4 * n_lora


def test_lora_checkpoint_holds_the_adapters_only_and_resumes_exactly(tmp_path):
    def run(restore=None, steps=(0, 4)):
        model = apply_lora(gpt2(), r=4, alpha=8, target_modules=["c_attn"])
        engine, opt = build(model)
        forget, retain = streams()
        if restore:
            checkpoint.load(restore, model=model, optimizer=opt, engine=engine, forget=forget, retain=retain)
        rows = [engine.step(retain.next(), forget.next()) for _ in range(*steps)]
        return model, engine, opt, forget, retain, rows

    model, engine, opt, forget, retain, first = run(steps=(0, 2))
    d = checkpoint.save(tmp_path / "ck", model=model, optimizer=opt, engine=engine, forget=forget, retain=retain,
                        steps_done=2)
    from safetensors.torch import load_file

    saved = load_file(str(d / "model.safetensors"))
    assert saved and all("lora_" in n for n in saved)  # the frozen target is not copied
    *_, resumed = run(restore=d, steps=(2, 4))
    *_, straight = run(steps=(0, 4))
    for a, b in zip(resumed, straight[2:]):
        for k in ("loss_r", "loss_f", "gram_rr", "gram_rf", "gram_ff", "lr"):
            assert a[k] == b[k], k


def test_gradient_checkpointing_gives_the_same_step():
    rows = []
    for ckpt in (False, True):
        model = gpt2()
        if ckpt:
            enable_checkpointing(model)
        engine, _ = build(model, lr_rule="fixed")
        forget, retain = streams()
        rows.append(engine.step(retain.next(), forget.next()))
    for k in ("loss_r", "loss_f", "gram_rr", "gram_rf", "gram_ff"):
        assert rows[1][k] == pytest.approx(rows[0][k], rel=1e-5), k


def test_out_of_memory_message_says_what_the_trial_needs():
    from pareto.memory import out_of_memory_message

    model = gpt2()
    n = sum(p.numel() for p in model.parameters())
    est = estimate_bytes(model, "adam")
    assert est == {"parameters": 4 * n, "gradient_buffers": 8 * n, "optimizer_state": 8 * n, "total": 20 * n}
    wide = estimate_bytes(model.to(torch.bfloat16), "adam", torch.float32)
    assert wide["gradient_buffers"] == 2 * 4 * n + 2 * n  # two fp32 buffers and the bf16 scratch
    msg = out_of_memory_message(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"), est, "cpu")
    assert msg.startswith("out of memory: CUDA out of memory. Tried to allocate 2.00 GiB.")
    assert f"needs {20 * n / 2**30:.2f} GiB before activations" in msg and "unlearn.lora" in msg
