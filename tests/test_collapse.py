"""Sec. 3.3, "How MAE avoids feature collapse": with L_cross alone (Table 1, setting (c)) LC-MAE collapses;
with L_MAE + L_cross (setting (e)) it does not.

A tiny LC-MAE is trained for a few hundred CPU steps on sklearn's 8 x 8 digits (bundled, offline), upsampled
to 16 x 16 and repeated to 3 channels, and the collapse monitors are read on held-out digits.

What collapses where, at this scale (the measured numbers are in the collapse numbers of the test report):

- the decoder's hidden state h (after decoder_norm: the input of both the pixel head and the projector) is
  the representation the two heads share. In (c) it collapses to nearly one point; in (e) the reconstruction
  loss keeps it spread ("assigning a unique target value for each predicted value").
- the projector output v = p(h) collapses in (c), as the paper says. It also collapses in (e): the linear
  projector alone can make v nearly constant (it learns to damp the directions in which h varies and amplify
  h's mean), which zeroes L_cross without touching h. Nothing in (e) constrains v's spread; L_in does, in
  (a), (d), (f), (g). So the test reads "(e) does not collapse" on h, not on v.
"""

import pytest
import torch
import torch.nn.functional as F

from lcmae_core.models import LCMAE
from lcmae_core.train.monitors import collapse_stats, monitor_noise

pytestmark = pytest.mark.slow

STEPS, LR, BATCH = 300, 5e-3, 64


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    x = torch.tensor(load_digits().images, dtype=torch.float32)[:, None] / 16.0  # (1797, 1, 8, 8) in [0, 1]
    x = F.interpolate(x, size=16, mode="bilinear", align_corners=False).repeat(1, 3, 1, 1)
    x = (x - 0.5) / 0.5
    return x[:128], x[1000:1128]  # a small fixed training set, held-out digits


def tiny_lcmae(setting: str, seed: int) -> LCMAE:
    torch.manual_seed(seed)
    return LCMAE(img_size=16, patch_size=4, in_chans=3, embed_dim=32, depth=1, num_heads=2, decoder_embed_dim=32,
                 decoder_depth=1, decoder_num_heads=2, mlp_ratio=2.0, proj_dim=64, setting=setting)


def monitor(model: LCMAE, imgs: torch.Tensor) -> dict[str, float]:
    """Collapse stats of v and of the projector input h on the masked tokens of held-out images, plus L_MAE."""
    model.eval()
    seen = {}
    hook = model.projector.register_forward_hook(lambda m, i, o: seen.__setitem__("h", i[0]))
    try:
        with torch.no_grad():
            noise = torch.rand(2, len(imgs), model.num_patches, generator=torch.Generator().manual_seed(99))
            out = model.compute_losses(imgs, 0.75, noise)
    finally:
        hook.remove()
    sv, sh = collapse_stats(out["v"], out["mask"]), collapse_stats(seen["h"], out["mask"])
    return {"v_std": sv["feature_std"] / sv["uniform_std"], "v_rank": sv["effective_rank"],
            "h_std": sh["feature_std"] / sh["uniform_std"], "h_rank": sh["effective_rank"],
            "loss_mae": out["loss_mae"].item(), "loss_cross": out["loss_cross"].item()}


def train(setting: str, seed: int, train_imgs: torch.Tensor, steps: int = STEPS, lr: float = LR) -> LCMAE:
    model = tiny_lcmae(setting, seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.05)
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        idx = torch.randint(0, len(train_imgs), (BATCH,), generator=g)
        loss = model.compute_losses(train_imgs[idx], 0.75)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model


@pytest.fixture
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # faster than 2 threads for this tiny model on 2 shared cores
    yield
    torch.set_num_threads(n)


def test_setting_c_collapses_and_e_does_not(digits, one_thread):
    train_imgs, test_imgs = digits
    seed = 0
    # at initialisation nothing is collapsed: the drop below is the training's doing
    init = monitor(tiny_lcmae("c", seed), test_imgs)
    assert init["v_std"] > 0.2 and init["h_std"] > 0.2 and init["h_rank"] > 3 and init["v_rank"] > 3

    c = monitor(train("c", seed, train_imgs), test_imgs)
    e = monitor(train("e", seed, train_imgs), test_imgs)
    print(f"\ncollapse (seed {seed}, x uniform_std): init {init}\n c {c}\n e {e}")

    # (c): L_cross reaches ~0 by mapping every masked token to nearly one point, at v and at h
    assert c["loss_cross"] < 1e-3
    assert c["v_std"] < 0.05, c
    assert c["v_rank"] < 1.6, c
    assert c["h_std"] < 0.1, c
    assert c["h_rank"] < 2.5, c
    # (e): the shared representation h stays spread, because a collapsed h could not reconstruct
    assert e["h_std"] > 0.3, e
    assert e["h_rank"] > 3.0, e
    assert e["h_std"] > 5 * c["h_std"]
    assert e["loss_mae"] < 0.5 * c["loss_mae"]  # collapse would cost a large reconstruction loss


def test_the_monitors_masks_are_the_same_on_every_device():
    """The monitors of a run trained on a GPU and of its random-init twin, measured on the CPU (the Table 1 page), read
    the same masks: the noise is drawn on the CPU and moved (a generator on the device would draw other numbers)."""
    cpu = monitor_noise(3, 5, seed=7, device=torch.device("cpu"))
    assert torch.equal(cpu, torch.rand(2, 3, 5, generator=torch.Generator().manual_seed(7)))
    elsewhere = monitor_noise(3, 5, seed=7, device=torch.device("meta"))  # a device with no generator of its own
    assert elsewhere.device.type == "meta" and elsewhere.shape == (2, 3, 5)
