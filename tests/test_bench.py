"""The benchmark (``lcmae_core.perf.bench``) on the CPU: end to end on the tiny workload, well-formed JSON lines,
one-line errors, the compile fallback, bf16 and compiled numerics, FLOP counts."""

from __future__ import annotations

import json
import warnings

import pytest
import torch

from lcmae_core.perf import bench as B
from lcmae_core.train import compile as C
from lcmae_core import gpu_data
from lcmae_core.perf import flops, profiling, records

REQUIRED = {"command", "device", "torch", "date", "workload", "mode", "batch", "ms_per_step", "img_per_s",
            "peak_mem_gib", "mem_kind", "steps", "warmup"}


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


def test_tiny_runs_end_to_end_in_each_cpu_mode_and_writes_jsonl(tmp_path, capsys):
    out = tmp_path / "r.jsonl"
    argv = ["--device", "cpu", "--workloads", "tiny,lcmae_tiny", "--modes", "fp32,bf16", "--steps", "2",
            "--warmup", "1", "--batch", "4", "--out", str(out), "--no-progress", "--cuda-graphs"]
    assert B.main(argv) == 0
    recs = read_jsonl(out)
    assert [(r["workload"], r["mode"]) for r in recs] == [("tiny", "fp32"), ("tiny", "bf16"),
                                                          ("lcmae_tiny", "fp32"), ("lcmae_tiny", "bf16")]
    for r in recs:
        assert REQUIRED <= set(r), REQUIRED - set(r)
        assert r["command"].startswith("python -m lcmae_core.perf.bench --device cpu")
        assert r["torch"] == torch.__version__ and r["batch"] == 4 and r["steps"] == 2
        assert r["img_per_s"] > 0 and r["ms_per_step"] > 0 and r["mem_kind"] == "process_peak_rss"
        assert r["flops_per_img"] > 0 and r["mfu"] is None  # no peak known for a CPU
        assert r["cuda_graphs"] is False and "ignored" in r["notes"]  # CUDA graphs are a no-op on CPU
    # LC-MAE counts an image once for its two views (and its smoke decoder is deeper): over twice the MAE's
    assert recs[2]["flops_per_img"] > 2 * recs[0]["flops_per_img"]
    # a second run appends
    assert B.main(argv[:-1] + ["--workloads", "tiny", "--modes", "fp32", "--no-flops"]) == 0
    assert len(read_jsonl(out)) == 5
    assert "img/s" in capsys.readouterr().out


def test_default_results_file_is_named_by_device_torch_and_date():
    path = records.results_path(torch.device("cpu"), date="2030-01-02")
    assert path.endswith(f"bench/results/cpu_torch{records.slug(torch.__version__)}_2030-01-02.jsonl")


def test_write_jsonl_appends_atomically(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"a": 1}')  # no trailing newline
    records.write_jsonl(str(path), [{"b": 2}, {"c": 3}])
    assert read_jsonl(path) == [{"a": 1}, {"b": 2}, {"c": 3}]
    assert [p.name for p in tmp_path.iterdir()] == ["x.jsonl"]  # no temporary file left


@pytest.mark.parametrize("argv, match", [
    (["--workloads", "nope"], "unknown workload 'nope'"),
    (["--modes", "fp8"], "unknown mode 'fp8'"),
    (["--steps", "0"], "--steps must be positive"),
    (["--workloads", "loader"], "needs --data-root"),
    (["--bogus"], "unrecognized arguments"),
])
def test_bad_input_is_one_line_and_exit_2(argv, match, capsys, tmp_path):
    assert B.main(["--device", "cpu", "--out", str(tmp_path / "r.jsonl"), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and match in err and "\n" not in err
    assert not (tmp_path / "r.jsonl").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_cuda_without_gpu_is_one_line(capsys):
    assert B.main(["--device", "cuda"]) == 2
    assert "no CUDA GPU is available; use --device cpu" in capsys.readouterr().err


def test_cli_subcommand_is_registered(capsys):
    from lcmae_core import cli

    assert cli.main(["bench", "--list"]) == 0
    out = capsys.readouterr().out
    assert "mae_b16" in out and "lcmae_b16" in out and "bf16_compile" in out
    assert cli.main(["bench", "--workloads", "nope", "--device", "cpu"]) == 2
    assert "unknown workload" in capsys.readouterr().err


# -------------------------------------------------------------------------------------------------------
# compile
def test_maybe_compile_falls_back_to_eager_with_one_warning(monkeypatch):
    def broken_compile(fn, **kwargs):
        def run(*a, **k):
            raise RuntimeError("inductor exploded\nlong traceback")
        return run

    monkeypatch.setattr(torch, "compile", broken_compile)
    lin = torch.nn.Linear(3, 2)
    x = torch.randn(4, 3)
    expect = lin(x)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        m = C.maybe_compile(lin, True)
        assert m is lin and C.compile_status(m) == "not yet called"
        torch.testing.assert_close(m(x), expect)
        torch.testing.assert_close(m(x), expect)
    msgs = [str(x.message) for x in w if issubclass(x.category, RuntimeWarning)]
    assert len(msgs) == 1 and "inductor exploded" in msgs[0] and "long traceback" not in msgs[0]
    assert C.compile_status(m) == "eager (compile failed)"
    assert list(m.state_dict()) == ["weight", "bias"]  # compiled in place: the keys are unchanged
    # functions too, and a failure in torch.compile itself
    monkeypatch.setattr(torch, "compile", lambda fn, **kw: (_ for _ in ()).throw(RuntimeError("no compiler")))
    with pytest.warns(RuntimeWarning, match="no compiler"):
        f = C.maybe_compile(torch.sin, True)
    assert f is torch.sin
    assert C.maybe_compile(torch.cos, False) is torch.cos


def test_bench_compile_mode_records_the_fallback(tmp_path, monkeypatch):
    monkeypatch.setattr(torch, "compile", lambda fn, **kw: (lambda *a, **k: (_ for _ in ()).throw(
        RuntimeError("forced failure"))))
    out = tmp_path / "r.jsonl"
    with pytest.warns(RuntimeWarning, match="forced failure"):
        assert B.main(["--device", "cpu", "--workloads", "tiny", "--modes", "bf16_compile", "--steps", "1",
                       "--warmup", "1", "--batch", "4", "--out", str(out), "--no-progress", "--no-flops"]) == 0
    (rec,) = read_jsonl(out)
    assert rec["compile"] == "eager (compile failed)" and rec["img_per_s"] > 0


def test_a_failing_measurement_is_recorded_and_the_rest_go_on(tmp_path, monkeypatch, capsys):
    real = B.run_model

    def flaky(w, mode, opts):
        if mode == "bf16":
            raise RuntimeError("CUDA out of memory\nmore")
        return real(w, mode, opts)

    monkeypatch.setattr(B, "run_model", flaky)
    out = tmp_path / "r.jsonl"
    assert B.main(["--device", "cpu", "--workloads", "tiny", "--modes", "bf16,fp32", "--steps", "1", "--warmup",
                   "0", "--batch", "4", "--out", str(out), "--no-progress", "--no-flops"]) == 1
    bad, good = read_jsonl(out)
    assert bad["error"] == "RuntimeError: CUDA out of memory" and bad["mode"] == "bf16"
    assert good["mode"] == "fp32" and good["img_per_s"] > 0
    assert "FAILED" in capsys.readouterr().err


def test_the_gpu_scales_mae_is_a_workload_and_the_warm_up_is_timed(tmp_path, one_thread):
    """mae_gpu, the reference record's MAE, as the bench builds it from the gpu preset; every record holds its warm-up's
    seconds (on a GPU with compile, what the first call's compiling cost)."""
    out = tmp_path / "r.jsonl"
    assert B.main(["--device", "cpu", "--workloads", "mae_gpu", "--modes", "fp32", "--steps", "1", "--warmup", "1",
                   "--batch", "4", "--out", str(out), "--no-progress", "--no-flops"]) == 0
    (rec,) = read_jsonl(out)
    assert (rec["workload"], rec["img_size"], rec["family"]) == ("mae_gpu", 48, "mae")
    assert rec["warmup_s"] > 0 and rec["img_per_s"] > 0


def test_a_profiler_that_fails_keeps_the_timing(tmp_path, monkeypatch, one_thread):
    def broken(*a, **k):
        raise RuntimeError("CUPTI is not available\nmore")

    monkeypatch.setattr(B, "profile_steps", broken)
    out = tmp_path / "r.jsonl"
    assert B.main(["--device", "cpu", "--workloads", "tiny", "--modes", "fp32", "--steps", "1", "--warmup", "1",
                   "--batch", "4", "--out", str(out), "--no-progress", "--no-flops", "--profile", "1"]) == 0
    (rec,) = read_jsonl(out)
    assert rec["img_per_s"] > 0 and rec["profile_error"] == "RuntimeError: CUPTI is not available"


def test_numerics_alone_measures_only_the_loss_curves(tmp_path, capsys, one_thread):
    """--numerics-only: the loss curves and no throughput run of each mode (which on a GPU compiles once more)."""
    out = tmp_path / "r.jsonl"
    assert B.main(["--device", "cpu", "--workloads", "tiny", "--modes", "fp32,bf16", "--batch", "4", "--numerics",
                   "2", "--numerics-only", "--out", str(out), "--no-progress", "--no-flops"]) == 0
    recs = read_jsonl(out)
    assert [(r["mode"], r["check"], r["steps"]) for r in recs] == [("bf16", "loss_curve_vs_fp32_eager", 2)]
    assert B.main(["--device", "cpu", "--workloads", "tiny", "--numerics-only", "--out", str(out)]) == 2
    assert "--numerics-only needs --numerics STEPS" in capsys.readouterr().err


def test_compiled_loss_curve_equals_eager():
    """torch.compile (dynamo + AOTAutograd, the aot_eager backend: no C++ build) changes no number."""
    eager = B.loss_curve("tiny", "fp32", 2, batch=4)
    compiled = B.loss_curve("tiny", "fp32_compile", 2, batch=4, compile_kwargs={"backend": "aot_eager"})
    torch.testing.assert_close(torch.tensor(compiled), torch.tensor(eager), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("workload", ["tiny", "lcmae_tiny"])
def test_bf16_autocast_loss_curve_is_within_bf16_tolerance_of_fp32(workload):
    ref = B.loss_curve(workload, "fp32", 5, batch=8)
    bf16 = B.loss_curve(workload, "bf16", 5, batch=8)
    cmp = B.compare_curves(ref, bf16)
    assert cmp["max_rel_diff"] < B.NUMERICS_TOL["bf16"]
    assert ref != bf16  # autocast did something


def test_same_noise_same_curve():
    assert B.loss_curve("tiny", "fp32", 2, batch=4) == B.loss_curve("tiny", "fp32", 2, batch=4)


# -------------------------------------------------------------------------------------------------------
# FLOPs
def test_vit_t4_training_flops_are_0p9_g_per_image():
    """The reference: 0.9 G per image (torch.utils.flop_counter, training). ViT-B/16's 58.8 G / 34.8 G are
    checked by the bench and recorded in bench/results (a ViT-B forward + backward takes too long here)."""
    f = flops.workload_flops("mae_t4")
    assert abs(f / 1e9 - 0.9) < 0.01


def test_fused_cpu_attention_is_counted_like_the_cuda_kernels():
    """The CPU flash kernel gets PyTorch's CUDA formula (backward recomputes the scores: 2.5x forward)."""
    from lcmae_core.models import create_model

    torch.manual_seed(0)
    model = create_model("mae", "test")
    f = flops.training_flops(model, 32, 0.75, images=2)
    attn = {k: v for k, v in f["by_op"].items() if "attention" in k}
    fwd = sum(v for k, v in attn.items() if "backward" not in k)
    bwd = sum(v for k, v in attn.items() if "backward" in k)
    assert fwd > 0 and bwd == pytest.approx(2.5 * fwd)
    assert f["total"] > 2.5 * f["forward"]


# -------------------------------------------------------------------------------------------------------
# data-path workloads
@pytest.fixture(scope="module")
def jpegs(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench_jpegs")
    gpu_data.write_synthetic_jpegs(str(root), 16, size=(100, 75), num_classes=2)
    return root


def test_loader_workloads_and_e2e_on_cpu(jpegs, tmp_path):
    out = tmp_path / "r.jsonl"
    assert B.main(["--device", "cpu", "--workloads", "loader,loader_pil,e2e", "--modes", "fp32", "--steps", "2",
                   "--warmup", "1", "--batch", "4", "--workers", "0", "--data-root", str(jpegs),
                   "--e2e-model", "tiny", "--data-path", "gpu", "--out", str(out), "--no-progress"]) == 0
    recs = {r["workload"]: r for r in read_jsonl(out)}
    assert recs["loader"]["data_path"] == "gpu" and recs["loader"]["images_in_folder"] == 16
    assert recs["loader_pil"]["data_path"].startswith("cpu")
    assert recs["e2e"]["model"] == "tiny" and recs["e2e"]["img_per_s"] > 0
    assert recs["e2e"]["loss_last"] > 0
    # the data paths are timed over whole epochs from an epoch's start (16 images: 4 batches), at the window's rate:
    # the workers' prefetch would otherwise hand the window batches made during the warm-up
    for r in recs.values():
        assert (r["epoch_batches"], r["warmup"], r["steps"]) == (4, 4, 4), r
        assert r["img_per_s"] == pytest.approx(r["img_per_s_window"], rel=1e-3)
    assert [B.whole_epochs(n, 16) for n in (0, 1, 16, 17, 40)] == [16, 16, 16, 32, 48]
    # the GPU data path says how its images were decoded (here, on the CPU device: every batch whole)
    for name in ("loader", "e2e"):
        assert recs[name]["decoded"] == {"batched": 32, "alone": 0, "cpu": 0}, recs[name]
    assert "decoded" not in recs["loader_pil"]


# -------------------------------------------------------------------------------------------------------
# profiling and the autotune mode
def test_profile_saves_where_the_time_goes(tmp_path, capsys, one_thread):
    out = tmp_path / "r.jsonl"
    assert B.main(["--device", "cpu", "--workloads", "tiny", "--modes", "fp32", "--steps", "1", "--warmup", "1",
                   "--batch", "8", "--out", str(out), "--no-progress", "--no-flops", "--profile", "2"]) == 0
    (rec,) = read_jsonl(out)
    path = tmp_path / rec["profile_file"]
    assert path.name.startswith("profile_tiny_fp32_cpu_") and path.exists()
    doc = json.loads(path.read_text())
    assert doc["steps"] == 2 and doc["time_kind"] == "self CPU operator time"
    shares = {c: v["share"] for c, v in doc["categories"].items()}
    assert shares == rec["profile_shares"]
    assert abs(sum(shares.values()) - 1.0) < 1e-3
    assert shares["matmul"] > 0 and shares["attention"] > 0 and shares["optimizer"] > 0
    top = [r["ms_per_step"] for r in doc["top"]]
    assert top == sorted(top, reverse=True) and len(top) <= 40
    assert 0 < rec["profile_busy_ms_per_step"] == doc["busy_ms_per_step"]
    assert "profile: " in capsys.readouterr().out


@pytest.mark.parametrize("name, cat", [
    ("sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64_warpgroupsize1x1x1", "matmul"),
    ("nvjet_tst_128x256_64x4_1x2_h_bz_coopA_TNT", "matmul"),
    ("void cutlass::Kernel2<cutlass_80_wmma_tensorop_bf16_s161616gemm_bf16_32x32_128x2_tn_align8>", "matmul"),
    ("aten::addmm", "matmul"),
    ("triton_poi_fused_add_native_layer_norm_0", "fused_elementwise"),
    ("triton_red_fused_native_layer_norm_backward_3", "fused_elementwise"),
    ("void pytorch_flash::flash_bwd_dq_dk_dv_loop_seqk_parallel_kernel<Flash_bwd_kernel_traits<64>>", "attention"),
    ("aten::_scaled_dot_product_flash_attention_for_cpu", "attention"),
    ("void at::native::(anonymous namespace)::multi_tensor_apply_kernel<FusedAdamMathFunctor<float, 4>>",
     "optimizer"),
    ("Memcpy HtoD (Pageable -> Device)", "memory"),
    ("void at::native::(anonymous namespace)::CatArrayBatchedCopy<float, unsigned int, 3, 128, 1>", "memory"),
    # Triton: the matmul templates of max-autotune are matmuls; every other fused kernel, a gather included, is fused
    ("triton_tem_fused_mm_4", "matmul"),
    ("triton_tem_fused_addmm_gelu_2", "matmul"),
    ("triton_poi_fused_gather_index_3", "fused_elementwise"),
    # eager: the masking's gathers and sorts, then ATen's unfused elementwise and reduction kernels
    ("void at::native::_scatter_gather_elementwise_kernel<128, 4, void at::native::_cuda_scatter_gather_internal_"
     "kernel<false, float>::operator()>", "indexing"),
    ("void at::native::index_elementwise_kernel<128, 4, void at::native::gpu_index_kernel>", "indexing"),
    ("void at_cuda_detail::cub::DeviceRadixSortOnesweepKernel<at_cuda_detail::cub::DeviceRadixSortPolicy>",
     "indexing"),
    ("aten::argsort", "indexing"),
    ("void at::native::vectorized_elementwise_kernel<4, at::native::GeluCUDAKernelImpl, at::detail::Array<char*, 2>>",
     "elementwise"),
    ("void at::native::reduce_kernel<512, 1, at::native::ReduceOp<float, at::native::MeanOps<float, float, float, "
     "float>, unsigned int, float, 4>>", "elementwise"),
    ("void at::native::(anonymous namespace)::vectorized_layer_norm_kernel<float, float>", "elementwise"),
    ("aten::gelu_backward", "elementwise"),
    ("void at::native::distribution_elementwise_grid_stride_kernel<float, 4>", "other"),
    ("aten::rand", "other"),
])
def test_profile_categories_of_real_kernel_names(name, cat):
    assert profiling.profile_category(name) == cat


class _Evt:
    def __init__(self, key, us, count=1, device="CPU"):
        self.key, self.count, self.device_type = key, count, f"DeviceType.{device}"
        self.self_cpu_time_total = us if device == "CPU" else 0.0
        self.self_device_time_total = us if device == "CUDA" else 0.0


def test_summarize_profile_counts_only_the_devices_own_time():
    events = [_Evt("aten::mm", 9000.0, 4), _Evt("triton_poi_fused_gelu_1", 3000.0, 2, "CUDA"),
              _Evt("nvjet_tst_128x256", 6000.0, 4, "CUDA"), _Evt("flash_fwd_kernel", 1000.0, 2, "CUDA")]
    gpu = profiling.summarize_profile(events, steps=2, device_kind="cuda")
    assert gpu["busy_ms_per_step"] == 5.0  # (3000 + 6000 + 1000) us / 2 steps; the CPU op is not counted
    assert gpu["categories"] == {"matmul": {"ms_per_step": 3.0, "share": 0.6},
                                 "fused_elementwise": {"ms_per_step": 1.5, "share": 0.3},
                                 "attention": {"ms_per_step": 0.5, "share": 0.1}}
    assert [r["name"] for r in gpu["top"]] == ["nvjet_tst_128x256", "triton_poi_fused_gelu_1", "flash_fwd_kernel"]
    assert gpu["top"][0]["calls_per_step"] == 2.0
    cpu = profiling.summarize_profile(events, steps=1, device_kind="cpu")
    assert cpu["busy_ms_per_step"] == 9.0 and list(cpu["categories"]) == ["matmul"]


def test_autotune_mode_compiles_with_max_autotune(tmp_path, monkeypatch):
    seen = []
    real = C.maybe_compile

    def spy(obj, enabled=True, **kw):
        seen.append((enabled, kw.get("mode")))
        return real(obj, False)

    monkeypatch.setattr(B, "maybe_compile", spy)
    out = tmp_path / "r.jsonl"
    assert B.main(["--device", "cpu", "--workloads", "tiny", "--modes", "bf16_autotune,bf16_compile", "--steps",
                   "1", "--warmup", "0", "--batch", "4", "--out", str(out), "--no-progress", "--no-flops"]) == 0
    assert seen == [(True, "max-autotune-no-cudagraphs"), (True, None)]
    auto, default = read_jsonl(out)
    assert auto["compile_mode"] == "max-autotune-no-cudagraphs" and default["compile_mode"] is None
    assert B.NUMERICS_TOL["bf16_autotune"] == B.NUMERICS_TOL["bf16_compile"]
