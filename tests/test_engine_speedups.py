"""The engine's speed-ups, checked on the CPU: ``engine.train_step`` is the plain loop's step bit for bit, compile
(aot_eager on CPU) keeps the loss curve, and the runtime-only config fields (compile, CUDA graphs, the data path)
validate and leave a run's hash unchanged."""

import contextlib
import json
import os

import pytest
import torch
import torch.nn as nn

from lcmae_core import configs, runs
from lcmae_core import gpu_data
from lcmae_core.perf import bench
from lcmae_core.train import compile as compile_mod
from lcmae_core.perf.measure import train_step
from lcmae_core.models import build_model
from lcmae_core.train import engine
from lcmae_core.train.schedule import set_lr



class TinyObjective(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(6, 16), nn.GELU(), nn.Linear(16, 3))

    def forward(self, x, y):
        out = self.net(x)
        mse = (out - y).pow(2).mean()
        return {"loss": mse + 0.1 * out.abs().mean(), "loss_mse": mse}


def _data(n, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(4, 6, generator=g), torch.randn(4, 3, generator=g)) for _ in range(n)]


def _reference_loop(obj, opt, batches, accum_iter, clip_grad, lr):
    """The step of ``train_one_epoch`` before ``train_step`` existed, inlined."""
    params = [p for g in opt.param_groups for p in g["params"]]
    opt.zero_grad(set_to_none=True)
    losses = []
    for i, (x, y) in enumerate(batches):
        if i % accum_iter == 0:
            set_lr(opt, lr)
        last_micro = (i + 1) % accum_iter == 0 or i + 1 == len(batches)
        with contextlib.nullcontext():
            out = obj(x, y)
        loss = out["loss"]
        (loss.float() / accum_iter).backward()
        if last_micro:
            if clip_grad:
                torch.nn.utils.clip_grad_norm_(params, clip_grad)
            opt.step()
            opt.zero_grad(set_to_none=True)
        losses.append(loss.detach())
    return losses


def _pair():
    torch.manual_seed(0)
    a = TinyObjective()
    b = TinyObjective()
    b.load_state_dict(a.state_dict())
    oa = torch.optim.AdamW(a.parameters(), lr=1e-2, weight_decay=0.05, betas=(0.9, 0.95))
    ob = torch.optim.AdamW(b.parameters(), lr=1e-2, weight_decay=0.05, betas=(0.9, 0.95))
    return a, oa, b, ob


@pytest.mark.parametrize("accum_iter,clip_grad", [(1, None), (2, 0.5), (3, None)])
def test_train_one_epoch_equals_the_reference_loop_bitwise(accum_iter, clip_grad):
    batches = _data(7)
    a, oa, b, ob = _pair()
    ref = _reference_loop(a, oa, batches, accum_iter, clip_grad, 1e-2)
    stats = engine.train_one_epoch(b, batches, ob, epoch=0, lr_fn=lambda e: 1e-2, device=torch.device("cpu"),
                                   accum_iter=accum_iter, clip_grad=clip_grad, log_every=3, progress=False)
    for (k, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(pa, pb), k
    assert stats["steps"] == -(-7 // accum_iter)
    assert stats["loss"] == pytest.approx(float(torch.stack(ref).mean()), rel=1e-6)


def test_train_step_keeps_only_detached_scalars():
    a, oa, _, _ = _pair()
    (x, y), = _data(1)
    losses, out = engine.train_step(a, oa, x, y, device=torch.device("cpu"))
    assert out is None and set(losses) == {"loss", "loss_mse"}
    assert all(v.dim() == 0 and not v.requires_grad for v in losses.values())
    assert all(p.grad is None for p in a.parameters())  # zero_grad(set_to_none=True)
    losses, out = engine.train_step(a, oa, x, y, device=torch.device("cpu"), keep_outputs=True)
    assert out is not None and "loss" in out


def test_make_optimizer_is_the_pretraining_recipe():
    cfg = configs.preset("mae", "smoke")
    model = build_model(cfg)
    opt = engine.make_optimizer(cfg, model, torch.device("cpu"))
    assert isinstance(opt, torch.optim.AdamW)
    assert opt.param_groups[0]["betas"] == tuple(cfg.optim.betas)


def test_a_decoder_rate_multiple_scales_the_decoders_groups_and_keeps_the_weight_decay_split():
    cfg = configs.apply_overrides(configs.preset("mae", "smoke"), ["optim.decoder_lr_scale=2"])
    model = build_model(cfg)
    plain = engine.make_optimizer(configs.preset("mae", "smoke"), model, torch.device("cpu"))
    opt = engine.make_optimizer(cfg, model, torch.device("cpu"))
    set_lr(opt, 1e-3)
    names = {id(p): n for n, p in model.named_parameters()}
    rate = {names[id(p)]: g["lr"] for g in opt.param_groups for p in g["params"]}
    decay = {names[id(p)]: g["weight_decay"] for g in opt.param_groups for p in g["params"]}
    assert set(rate) == {n for n, p in model.named_parameters() if p.requires_grad}  # each trained one, once
    assert rate["mask_token"] == rate["decoder_pred.weight"] == rate["decoder_blocks.0.attn.qkv.weight"] == 2e-3
    assert rate["blocks.0.attn.qkv.weight"] == rate["patch_embed.proj.weight"] == rate["cls_token"] == 1e-3
    # the same parameters decay as in timm's groups of the one-rate recipe
    assert decay == {names[id(p)]: g["weight_decay"] for g in plain.param_groups for p in g["params"]}
    assert decay["decoder_blocks.0.attn.qkv.weight"] == cfg.optim.weight_decay and decay["mask_token"] == 0.0


def test_bench_train_step_is_the_engines(one_thread):
    """The benchmark's step (``perf.measure.train_step``) goes through engine.train_step: the same weights as the
    engine's epoch."""
    batches = _data(4)
    a, oa, b, ob = _pair()
    for x, y in batches:
        train_step(a, oa, x, y, torch.device("cpu"), "fp32", 1e-2)
    engine.train_one_epoch(b, batches, ob, epoch=0, lr_fn=lambda e: 1e-2, device=torch.device("cpu"),
                           progress=False)
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)


def test_compile_on_cpu_keeps_the_loss_curve(one_thread):
    ref = bench.loss_curve("tiny", "fp32", 3, batch=8)
    comp = bench.loss_curve("tiny", "fp32_compile", 3, batch=8, compile_kwargs={"backend": "aot_eager"})
    assert bench.compare_curves(ref, comp)["max_rel_diff"] < 1e-4


def test_resolve_compile_defaults():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert compile_mod.resolve_compile(None, False, cpu) == (False, None)
    assert compile_mod.resolve_compile(None, False, cuda) == (True, None)
    assert compile_mod.resolve_compile(None, True, cuda) == (True, "reduce-overhead")
    assert compile_mod.resolve_compile(False, True, cuda) == (False, None)
    assert compile_mod.resolve_compile(True, True, cpu) == (True, None)  # no CUDA graphs on CPU
    obj = TinyObjective()
    assert compile_mod.compile_objective(obj, None, False, cpu) == (obj, False)


def test_one_process_compiles_more_model_structures_than_dynamos_default_limit(monkeypatch):
    """A record's worker trains run after run in one process, a dozen model structures among them: each compiles,
    where dynamo's default limit (8 entries of the one code object they share) would run the ninth on eagerly."""
    import torch._dynamo as dynamo
    from torch._dynamo.utils import counters

    name = "recompile_limit" if hasattr(dynamo.config, "recompile_limit") else "cache_size_limit"
    monkeypatch.setattr(compile_mod, "BACKEND", "eager")
    dynamo.reset()
    counters.clear()
    with dynamo.config.patch({name: 8}):  # dynamo's default, restored after
        for depth in range(1, 13):
            obj, _ = compile_mod.compile_objective(nn.Sequential(*[nn.Linear(3, 3) for _ in range(depth)]), True,
                                                   False, torch.device("cpu"))
            obj(torch.randn(2, 3))
        assert getattr(dynamo.config, name) == compile_mod.RECOMPILE_LIMIT
    assert counters["stats"]["unique_graphs"] == 12
    dynamo.reset()


def test_a_backward_the_compiler_cannot_build_falls_back_to_eager_at_the_first_call():
    """AOTAutograd lowers the backward at the first ``backward()`` unless told otherwise, outside ``maybe_compile``'s
    fallback: the first call lowers it with the forward, so that a broken backward means an eager step, not a
    failed run."""
    import torch._dynamo as dynamo
    from functorch.compile import make_boxed_func
    from torch._dynamo.backends.common import aot_autograd

    def no_backward(gm, example_inputs):
        raise RuntimeError("this backward cannot be built")

    backend = aot_autograd(fw_compiler=lambda gm, example_inputs: make_boxed_func(gm.forward), bw_compiler=no_backward)
    dynamo.reset()
    torch.manual_seed(0)
    lin, x = nn.Linear(3, 2), torch.randn(4, 3)
    ref = nn.Linear(3, 2)
    ref.load_state_dict(lin.state_dict())
    with pytest.warns(RuntimeWarning, match="torch.compile failed"):
        m = compile_mod.maybe_compile(lin, True, backend=backend)
        m(x).square().sum().backward()
    ref(x).square().sum().backward()
    assert compile_mod.compile_status(m) == "eager (compile failed)"
    assert torch.equal(lin.weight.grad, ref.weight.grad) and torch.equal(lin.bias.grad, ref.bias.grad)
    dynamo.reset()


def _losses(run_dir):
    with open(os.path.join(run_dir, "log.jsonl")) as f:
        return [r["loss"] for r in map(json.loads, f) if r.get("event") == "train"]


def test_fit_with_compile_on_cpu_matches_eager(tmp_path, monkeypatch, recwarn, one_thread):
    """compile=true on CPU (aot_eager backend) trains the smoke MAE along the eager loss curve."""
    monkeypatch.setattr(compile_mod, "BACKEND", "aot_eager")
    base = configs.apply_overrides(configs.preset("mae", "smoke"),
                                   ["progress=false", "optim.epochs=1", "optim.warmup_epochs=0", "log_every=1",
                                    "knn=false"])
    eager = runs.run_or_load(base, root=str(tmp_path / "eager"))
    comp_cfg = configs.apply_overrides(base, ["compile=true"])
    assert configs.run_name(comp_cfg) == configs.run_name(base)
    comp = runs.run_or_load(comp_cfg, root=str(tmp_path / "comp"))
    a, b = _losses(eager.dir), _losses(comp.dir)
    assert len(a) == len(b) >= 2
    assert max(abs(x - y) / abs(x) for x, y in zip(a, b)) < 1e-3
    assert not [w for w in recwarn if "torch.compile failed" in str(w.message)]  # compiled, not the fallback


def test_new_fields_validate_and_are_not_hashed():
    cfg = configs.preset("mae", "cpu")
    name = configs.run_name(cfg)  # the runtime-only fields (compile, cuda_graphs, the data path) leave it unchanged
    assert cfg.compile is None and cfg.cuda_graphs is False and cfg.data.data_path == "auto"
    for over in (["compile=true"], ["compile=false"], ["cuda_graphs=true"], ["data.data_path=cpu"]):
        other = configs.validate(configs.apply_overrides(cfg, over))
        assert configs.run_name(other) == name, over
    assert configs.apply_overrides(cfg, ["compile=none"]).compile is None
    with pytest.raises(configs.ConfigError, match="true or false"):
        configs.apply_overrides(cfg, ["cuda_graphs=maybe"])
    with pytest.raises(configs.ConfigError, match="data_path"):
        configs.validate(configs.apply_overrides(cfg, ["data.data_path=disk"]))
    for key in ("compile", "cuda_graphs", "data.data_path"):
        assert key in configs.NOT_HASHED


def test_gpu_data_path_on_cpu_is_a_clear_error():
    """Decision: data.data_path=gpu on a CPU device is refused by validate (auto falls back to the PIL path)."""
    cfg = configs.apply_overrides(configs.preset("mae", "cpu"),
                                  ["device=cpu", "data.dataset=imagefolder", "data.limit=none", "data.data_path=gpu"])
    with pytest.raises(configs.ConfigError, match="needs a CUDA device"):
        configs.validate(cfg)
    auto = configs.apply_overrides(cfg, ["data.data_path=auto"]).data
    assert gpu_data.choose_data_path(auto.data_path, torch.device("cpu"), auto.dataset, auto.limit) == "cpu"


def test_find_unused_parameters_only_for_lcmae_with_a_zero_weight():
    for fam, over, want in (("mae", [], False), ("lcmae", [], False), ("lcmae", ["model.setting=c"], True)):
        cfg = configs.apply_overrides(configs.preset(fam, "smoke"), over)
        model = build_model(cfg)
        zero = fam == "lcmae" and not all((model.w_mae, model.w_cross, model.w_in))
        assert zero == want, (fam, over)


def test_rng_state_restores_after_a_map_location_load(tmp_path):
    """fit loads checkpoints with map_location=device: the RNG tensors may come back on a GPU (here: a dtype-
    preserving copy stands in); set_rng_state takes them back to the CPU."""
    from lcmae_core.train import checkpoint as ckpt_io

    torch.manual_seed(5)
    st = ckpt_io.rng_state()
    a = torch.rand(3)
    ckpt_io.atomic_save({"rng": st}, str(tmp_path / "c.pt"))
    ckpt_io.set_rng_state(ckpt_io.load(str(tmp_path / "c.pt"), map_location="cpu")["rng"])
    assert torch.equal(torch.rand(3), a)


def test_compile_mode_maps_with_cuda_graphs():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    auto = "max-autotune-no-cudagraphs"
    assert compile_mod.compile_mode(cuda, False, auto) == (auto, "")
    assert compile_mod.compile_mode(cuda, True, auto)[0] == "max-autotune"
    assert compile_mod.compile_mode(cuda, True, "default")[0] == "reduce-overhead"
    assert compile_mod.compile_mode(cuda, False, "default") == (None, "")
    mode, note = compile_mod.compile_mode(cpu, True, auto)
    assert mode == auto and "ignored" in note
    assert compile_mod.uses_cuda_graphs("max-autotune") and compile_mod.uses_cuda_graphs("reduce-overhead")
    assert not compile_mod.uses_cuda_graphs(auto) and not compile_mod.uses_cuda_graphs(None)
    assert compile_mod.resolve_compile(None, False, cuda, auto) == (True, auto)
    assert compile_mod.resolve_compile(False, False, cuda, auto) == (False, None)


def test_compile_mode_config_validates_and_is_not_hashed(monkeypatch):
    cfg = configs.preset("mae", "cpu")
    assert cfg.compile_mode is None and "compile_mode" in configs.NOT_HASHED
    auto = configs.validate(configs.apply_overrides(cfg, ["compile_mode=max-autotune-no-cudagraphs"]))
    assert auto.compile_mode == "max-autotune-no-cudagraphs" and configs.run_name(auto) == configs.run_name(cfg)
    with pytest.raises(configs.ConfigError, match="unknown compile_mode 'fastest'.*max-autotune-no-cudagraphs"):
        configs.validate(configs.apply_overrides(cfg, ["compile_mode=fastest"]))
    # with a test backend, the mode is dropped (torch.compile takes one or the other) and the objective compiles
    monkeypatch.setattr(compile_mod, "BACKEND", "aot_eager")
    obj, graphs = compile_mod.compile_objective(nn.Linear(2, 2), True, False, torch.device("cpu"),
                                                "max-autotune-no-cudagraphs")
    assert graphs is False and compile_mod.compile_status(obj) == "not yet called"
    obj(torch.ones(1, 2))
    assert compile_mod.compile_status(obj) == "compiled"


@pytest.mark.parametrize("family, over", [("mae", []), ("lcmae", []), ("ae", []), ("finetune", []),
                                          ("finetune", ["mixup=0.8", "cutmix=1.0", "smoothing=0.1"])])
def test_each_compiled_objective_is_one_graph_without_breaks(family, over, one_thread):
    """A graph break splits the compiled step into pieces with eager code between them (lost fusion and a host
    round trip on the GPU): each training objective must trace whole, mixup and cutmix included."""
    import torch._dynamo as dynamo

    from lcmae_core.train import finetune

    cfg = configs.apply_overrides(configs.preset(family, "smoke"), over)
    if family == "finetune":
        obj = finetune.build(cfg, torch.device("cpu")).objective
    else:
        obj = engine.PretrainObjective(build_model(cfg), cfg.mask_ratio)
    S = cfg.model.img_size
    imgs, targets = torch.randn(4, 3, S, S), torch.arange(4) % 2
    transform = getattr(obj.train(), "batch_transform", None)  # mixup/cutmix: eager, before the step
    if transform is not None:
        imgs, targets = transform(imgs, targets)
        assert targets.shape == ((4, 10) if "mixup=0.8" in over else (4,))
    dynamo.reset()
    ex = dynamo.explain(obj)(imgs, targets)
    assert ex.graph_break_count == 0, [b.reason[:200] for b in ex.break_reasons]
    assert ex.graph_count == 1
