"""The CTGAN game (game.name = "ctgan") and its networks (gankit.models.tabular): G's span activations and its
Gumbel noise, D's packs, training-by-sampling, the pac-wise gradient penalty, the conditional loss, exact
repeats and resumes, conditioning on a rare category, the checkpoint's model section and ONNX export."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import NamedTuple

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import gankit
from conftest import StopAt
from gankit.checkpoint import load_checkpoint, unprefixed
from gankit.config import Config, apply_overrides
from gankit.data.dataset import Dataset
from gankit.engine import Engine
from gankit.errors import GankitError
from gankit.games.ctgan import CTGANGame, ConditionSampler, TableProduct, pac_gradient_penalty
from gankit.models.tabular import (PacDiscriminator, TabularGenerator, build_tabular_generator, condition_vectors,
                                   gumbel_from_normal, plain_spans, tabular_inputs)
from gankit.runs import RunDir

B_FREQ = (0.8, 0.15, 0.05)  # column b's categories: the last one is rare
C_FREQ = (0.7, 0.3)


class Span(NamedTuple):  # what gankit.data.table_transform.Span holds
    column: str
    start: int
    width: int
    activation: str
    role: str


SPANS = [Span("a", 0, 1, "tanh", "value"), Span("a", 1, 2, "softmax", "mode"),
         Span("b", 3, 3, "softmax", "category"), Span("c", 6, 2, "softmax", "category")]
WIDTH, COND = 8, 5


def toy_table(n: int = 2000, seed: int = 0, discrete: bool = True) -> Dataset:
    """Encoded rows of a continuous column a (a value and one of 2 modes), b (3 categories, 0.8/0.15/0.05) and
    c (2 categories, 0.7/0.3); a's value depends on b, so conditioning matters. ``discrete=False``: a alone."""
    g = torch.Generator().manual_seed(seed)
    b = torch.multinomial(torch.tensor(B_FREQ), n, replacement=True, generator=g)
    c = torch.multinomial(torch.tensor(C_FREQ), n, replacement=True, generator=g)
    mode = (torch.rand(n, generator=g) < 0.5).long()
    value = (0.5 * b.float() - 0.5 + 0.1 * torch.randn(n, generator=g)).clamp(-0.99, 0.99)
    x = torch.cat([value[:, None], F.one_hot(mode, 2).float(), F.one_hot(b, 3).float(), F.one_hot(c, 2).float()], 1)
    spans = SPANS if discrete else SPANS[:2]
    x = x[:, :sum(s.width for s in spans)].contiguous()
    table = SimpleNamespace(spans=spans, discrete=[s for s in spans if s.role == "category"], width=x.shape[1],
                            state=lambda: ({}, {}))
    d = x.shape[1]
    return Dataset(name="toy", x=x, y=None, shift=torch.zeros(d), scale=torch.ones(d), normalize="none", table=table)


SMALL = ["game.name=ctgan", "loss.name=wgan-gp", "model.z_dim=8", "model.g_hidden=32", "model.d_hidden=32",
         "model.pack=10", "model.gumbel_tau=0.2", "data.batch_size=100", "train.g_betas=[0.5, 0.9]",
         "train.d_betas=[0.5, 0.9]", "train.steps=200", "train.log_every=50", "train.checkpoint_every=1000",
         "train.plot_every=1000", "train.device=cpu", "train.precision=fp32"]


def config(*extra: str) -> Config:
    return apply_overrides(Config(), [*SMALL, *extra])


def generator(cond_dim: int = COND, noise: int = 8) -> TabularGenerator:
    torch.manual_seed(0)
    return TabularGenerator(SPANS, noise, cond_dim, (16, 16), tau=0.2)


def some_conditions(n: int, seed: int = 0) -> torch.Tensor:
    return condition_vectors(SPANS[2:], [B_FREQ, C_FREQ], n, torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------------------------------- the networks


def test_generator_activates_each_span():
    """Shapes; tanh on the value; soft Gumbel-softmax rows in training mode, exact one-hots in eval mode; the
    same inputs give the same rows in either mode."""
    G = generator()
    assert G.z_dim == 8 + 2 + 3 + 2 and G.gumbel_dim == 7
    z, cond = torch.randn(64, G.z_dim, generator=torch.Generator().manual_seed(1)), some_conditions(64)
    for training in (True, False):
        G.train(training)
        x, raw = G.outputs(z, cond)
        assert x.shape == raw.shape == (64, WIDTH)
        assert torch.equal(G(z, cond), x)  # a function of its inputs: the Gumbel noise is part of z
        assert torch.equal(x[:, 0], torch.tanh(raw[:, 0])) and x[:, 0].abs().max() < 1
        for s in SPANS[1:]:
            block = x[:, s.start:s.start + s.width]
            torch.testing.assert_close(block.sum(1), torch.ones(64))
            one_hot = ((block == 0) | (block == 1)).all()
            assert bool(one_hot) != training
    G.train()
    with pytest.raises(ValueError, match="needs cond"):
        G(z)
    with pytest.raises(ValueError, match="z_dim = 15"):
        G(z[:, :8], cond)


def test_eval_one_hots_sample_the_softmax_of_the_logits():
    """Rows that share G's noise and condition share the logits; their Gumbel parts differ, so the one-hots of
    argmax(logits + Gumbel) are drawn with probabilities softmax(logits)."""
    G = generator().eval()
    n = 40_000
    z = torch.randn(n, G.z_dim, generator=torch.Generator().manual_seed(2))
    z[:, :8] = z[0, :8]
    cond = some_conditions(1).expand(n, COND)
    with torch.no_grad():
        x, raw = G.outputs(z, cond)
    for s in SPANS[1:]:
        expected = torch.softmax(raw[0, s.start:s.start + s.width], 0)
        torch.testing.assert_close(x[:, s.start:s.start + s.width].mean(0), expected, atol=0.01, rtol=0)


def test_gumbel_noise_from_normals_has_the_gumbel_law():
    g = gumbel_from_normal(torch.randn(200_000, generator=torch.Generator().manual_seed(3)))
    assert abs(g.mean().item() - 0.5772) < 0.01 and abs(g.var().item() - np.pi ** 2 / 6) < 0.03  # Euler's gamma


def test_discriminator_judges_packs_of_rows():
    D = PacDiscriminator(WIDTH, COND, (16, 16), pack=10)
    assert D(torch.rand(30, WIDTH), some_conditions(30)).shape == (3,)
    assert D.seq[0].in_features == 10 * (WIDTH + COND)
    assert [type(m).__name__ for m in D.seq[:3]] == ["Linear", "LeakyReLU", "Dropout"]
    assert D.seq[1].negative_slope == 0.2 and D.seq[2].p == 0.5
    with pytest.raises(ValueError, match="pack = 10"):
        D(torch.rand(25, WIDTH), some_conditions(25))


# ------------------------------------------------------------------------------------------- conditions


def test_training_conditions_follow_log_frequencies_and_real_rows_match_them():
    data = toy_table()
    sampler = ConditionSampler(data.x, plain_spans(SPANS[2:]))
    counts = data.x[:, 3:].sum(0).double()
    g = torch.Generator().manual_seed(0)
    index = sampler.conditions(200_000, g)
    share = torch.bincount(index, minlength=COND).double() / len(index)
    log = torch.log1p(counts)
    expected = torch.cat([log[:3] / log[:3].sum(), log[3:] / log[3:].sum()]) / 2  # a column uniformly, then log-freq
    torch.testing.assert_close(share, expected, atol=0.005, rtol=0)
    rows = sampler.real_rows(index[:5000], g)
    assert (data.x[rows, 3 + index[:5000]] == 1).all()  # every real row has its condition's category
    assert len(torch.unique(rows[index[:5000] == 2])) > 50  # drawn among all the rare category's rows
    torch.testing.assert_close(torch.tensor(sampler.frequencies[0], dtype=torch.float64), counts[:3] / len(data.x))


def test_the_real_batch_has_the_fake_batch_conditions_shuffled():
    cfg, data = config(), toy_table()
    game = CTGANGame(cfg, data)
    engine = Engine(cfg, data, game)
    real, real_cond, index = game._real(engine.ctx)
    assert real.shape == (100, WIDTH) and real_cond.shape == (100, COND)
    assert torch.equal(real_cond, real[:, 3:] * real_cond)  # the real rows have the conditioned categories
    assert torch.equal(real_cond.argmax(1).sort().values, index.sort().values)
    assert not torch.equal(real_cond.argmax(1), index)


def test_sampling_conditions_use_the_data_frequencies_or_one_category():
    g = torch.Generator().manual_seed(0)
    cond = condition_vectors(SPANS[2:], [B_FREQ, C_FREQ], 100_000, g)
    assert cond.shape == (100_000, COND) and torch.equal(cond.sum(1), torch.ones(100_000))
    torch.testing.assert_close(cond.mean(0), torch.tensor([*B_FREQ, *C_FREQ]) / 2, atol=0.005, rtol=0)
    fixed = condition_vectors(SPANS[2:], [B_FREQ, C_FREQ], 10, g, fixed=(0, 2))
    assert (fixed.argmax(1) == 2).all() and torch.equal(fixed.sum(1), torch.ones(10))
    assert (condition_vectors(SPANS[2:], [B_FREQ, C_FREQ], 10, g, fixed=(1, 0)).argmax(1) == 3).all()
    with pytest.raises(GankitError, match="2 discrete columns"):
        condition_vectors(SPANS[2:], [B_FREQ, C_FREQ], 10, g, fixed=(1, 2))
    assert condition_vectors([], [], 4).shape == (4, 0)


# ------------------------------------------------------------------------------------------- the losses


def test_pac_gradient_penalty_against_an_independent_computation():
    """One a per pack, the gradient norm over the pack's inputs together: checked by autograd per pack, and for a
    linear D in closed form, (||w|| - 1)^2."""
    torch.manual_seed(0)
    D = PacDiscriminator(WIDTH, COND, (16,), pack=5).eval()  # no dropout: the same D in both computations
    real, fake = torch.randn(20, WIDTH + COND), torch.randn(20, WIDTH + COND)
    ours = pac_gradient_penalty(D, real, fake, torch.Generator().manual_seed(7))
    a = torch.rand(4, 1, 1, generator=torch.Generator().manual_seed(7))
    terms = []
    for j in range(4):
        v = (a[j] * real[5 * j:5 * j + 5] + (1 - a[j]) * fake[5 * j:5 * j + 5]).requires_grad_(True)
        (grad,) = torch.autograd.grad(D.seq(v.reshape(1, -1)).sum(), v)
        terms.append((grad.norm() - 1) ** 2)
    torch.testing.assert_close(ours, torch.stack(terms).mean())
    ours.backward()  # differentiable in D's weights
    assert D.seq[0].weight.grad.abs().sum() > 0 and D.seq[3].weight.grad.abs().sum() > 0
    linear = PacDiscriminator(WIDTH, COND, (), pack=5)
    w = linear.seq[0].weight
    torch.testing.assert_close(pac_gradient_penalty(linear, real, fake), (w.norm() - 1) ** 2)


def test_conditional_loss_is_the_cross_entropy_of_the_chosen_column():
    sampler = ConditionSampler(toy_table(200).x, plain_spans(SPANS[2:]))
    raw = torch.randn(6, WIDTH)
    index = torch.tensor([0, 2, 3, 4, 1, 4])
    expected = torch.stack([F.cross_entropy(raw[i:i + 1, 3:6], index[i:i + 1]) if index[i] < 3 else
                            F.cross_entropy(raw[i:i + 1, 6:8], index[i:i + 1] - 3) for i in range(6)]).mean()
    torch.testing.assert_close(sampler.cross_entropy(raw, index), expected)


# ------------------------------------------------------------------------------------------- training


def logged(run) -> list[dict]:
    return [r for r in RunDir(run).read_metrics() if "steps_per_s" in r]


def weights(run) -> dict[str, torch.Tensor]:
    return load_checkpoint(RunDir(run).checkpoint)[0]


def test_training_repeats_and_resumes_exactly(tmp_path):
    """Two runs with one seed log the same losses and end with the same bytes; stopped at 100 and resumed to 200,
    every weight, optimizer state and RNG stream is bit-identical to 200 straight."""
    runs = {}
    for name in ("one", "two"):
        result = gankit.train(config(), data=toy_table(), run_dir=tmp_path / name, progress=False)
        runs[name] = logged(tmp_path / name)
    assert result.step == 200 and {"d_loss", "g_loss", "gp", "cond_loss", "w_distance"} <= set(runs["one"][-1])
    strip = [{k: v for k, v in r.items() if not k.endswith("_per_s")} for r in runs["one"]]
    assert strip == [{k: v for k, v in r.items() if not k.endswith("_per_s")} for r in runs["two"]]
    expected = weights(tmp_path / "one")
    assert all(torch.equal(v, weights(tmp_path / "two")[k]) for k, v in expected.items())
    run = tmp_path / "resumed"
    part = gankit.train(config(), data=toy_table(), run_dir=run, progress=False, callbacks=[StopAt(100)])
    assert part.step == 100
    gankit.train(run_dir=run, resume=True, data=toy_table(), progress=False)
    resumed = weights(run)
    assert resumed.keys() == expected.keys()
    for k in expected:
        assert torch.equal(resumed[k], expected[k]), k


def test_the_rare_category_is_generated_when_asked_for(tmp_path):
    """After a short training, G conditioned on b's rarest category (5% of the rows) generates it in most rows,
    far more often than G conditioned as the data's frequencies say."""
    result = gankit.train(config("train.steps=300"), data=toy_table(), run_dir=tmp_path / "r", progress=False)
    G = result.trainer.players["G"].eval()
    share = {}
    for fixed in ((0, 2), None):
        z, cond = tabular_inputs(result.trainer.model_info, 2000, seed=0, fixed=fixed)
        with torch.no_grad():
            share[fixed] = (G(z, cond)[:, 5] == 1).float().mean().item()
    assert share[(0, 2)] > 0.3 and share[(0, 2)] > 2 * share[None]


def test_a_table_without_discrete_columns_trains_without_conditions(tmp_path):
    data = toy_table(discrete=False)
    result = gankit.train(config("train.steps=20", "train.log_every=10"), data=data, run_dir=tmp_path / "r",
                          progress=False)
    info = result.trainer.model_info
    assert info["cond_dim"] == 0 and "cond_loss" not in result.record and np.isfinite(result.record["g_loss"])
    G = result.trainer.players["G"].eval()
    assert G(torch.randn(4, G.z_dim)).shape == (4, 3)
    assert tabular_inputs(info, 4)[1] is None


# ------------------------------------------------------------------------------------------- the product


def test_checkpoint_describes_the_generator(tmp_path):
    """The checkpoint's model section (JSON) rebuilds G; its weights load and give the same rows from the same
    seeded inputs."""
    run = tmp_path / "r"
    result = gankit.train(config("train.steps=20", "train.log_every=10"), data=toy_table(), run_dir=run,
                          progress=False)
    assert isinstance(result.trainer.product, TableProduct)
    assert [i["name"] for i in result.trainer.product.inputs()] == ["z", "cond"]
    tensors, meta = load_checkpoint(RunDir(run).checkpoint)
    model = json.loads(json.dumps(meta["model"]))
    assert model["family"] == "tabular" and model["z_dim"] == 15 and model["cond_dim"] == COND
    assert model["spans"] == plain_spans(SPANS) and model["discrete"] == [2, 3]
    assert model["noise_dim"] == 8 and model["g_hidden"] == [32, 32] and model["gumbel_tau"] == 0.2
    G = build_tabular_generator(model)
    G.load_state_dict(unprefixed("G", tensors))
    G.eval()
    z, cond = tabular_inputs(model, 50, seed=3)
    z2, cond2 = tabular_inputs(model, 50, seed=3)
    assert torch.equal(z, z2) and torch.equal(cond, cond2)
    trained = result.trainer.players["G"].eval()
    with torch.no_grad():
        assert torch.equal(G(z, cond), trained(z, cond))


def test_onnx_export_matches_pytorch(tmp_path):
    pytest.importorskip("onnxscript")
    ort = pytest.importorskip("onnxruntime")
    G = generator().eval()
    batch = torch.export.Dim("batch", min=1, max=1 << 20)
    z, cond = torch.randn(4, G.z_dim), some_conditions(4)
    program = torch.onnx.export(G, (z, cond), input_names=["z", "cond"], output_names=["x"], dynamo=True,
                                dynamic_shapes=({0: batch}, {0: batch}), verbose=False)
    program.save(str(tmp_path / "g.onnx"))
    session = ort.InferenceSession(str(tmp_path / "g.onnx"), providers=["CPUExecutionProvider"])
    for n in (1, 7, 256):
        z = torch.randn(n, G.z_dim, generator=torch.Generator().manual_seed(n))
        cond = some_conditions(n, seed=n)
        theirs = session.run(["x"], {"z": z.numpy(), "cond": cond.numpy()})[0]
        with torch.no_grad():
            np.testing.assert_allclose(theirs, G(z, cond).numpy(), atol=1e-5, rtol=0)


# ------------------------------------------------------------------------------------------- refusals


@pytest.mark.parametrize("overrides, message", [
    (["loss.name=hinge"], "loss.name = 'hinge' is not used"),
    (["loss.penalty=r1"], "loss.penalty = 'r1'"),
    (["train.augment=color"], "train.augment = 'color'"),
    (["model.spectral_norm=true"], "model.spectral_norm = true"),
    (["model.pack=7"], "model.pack = 7"),
    (["data.normalize=standard"], "data.normalize = 'standard'"),
])
def test_ctgan_refuses_settings_it_would_ignore(overrides, message):
    with pytest.raises(GankitError, match=message):
        config(*overrides)


def test_ctgan_needs_a_table(tmp_path):
    with pytest.raises(GankitError, match="needs a table"):
        gankit.train(None, run_dir=tmp_path / "r", steps=1, progress=False,
                     overrides=[*SMALL, "data.name=ring8", "data.n=500"])
