"""The backbone: structure, shapes, gradients and the text path."""

import dataclasses

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from textpromptir.model import SIZES, ModelConfig, TextPromptIR, strips
from textpromptir.model.attention import TransposedAttention
from textpromptir.model.block import IntegratedTransformerBlock, NAFBlock
from textpromptir.model.feedforward import GatedDconvFeedForward
from textpromptir.model.growth import grow
from textpromptir.model.norm import LayerNorm2d
from textpromptir.model.resampling import Upsample, make_upsample
from textpromptir.model.text_modulation import TextModulation

from conftest import untrained_model


def parameters_used_in_forward(model: torch.nn.Module, image: torch.Tensor, text: torch.Tensor) -> int:
    """Count the parameters that a forward pass reaches (they receive a gradient)."""
    model.zero_grad(set_to_none=True)
    model(image, text).sum().backward()
    return sum(p.numel() for p in model.parameters() if p.grad is not None)


def test_paper_size_has_the_papers_structure():
    config = SIZES["paper"]
    model = TextPromptIR(config)
    assert [len(stage.blocks) for stage in model.encoders] + [len(model.latent.blocks)] == [4, 6, 6, 8]
    assert [len(stage.blocks) for stage in model.decoders] == [6, 6, 4]  # levels 3, 2, 1
    assert len(model.refinement.blocks) == 4
    assert [stage.blocks[0].imta.body.heads for stage in model.encoders] == [1, 2, 4]
    assert model.latent.blocks[0].imta.body.heads == 8
    assert [stage.blocks[0].imta.norm.weight.numel() for stage in model.encoders] == [48, 96, 192]
    assert model.latent.blocks[0].igfn.body.project.in_channels == int(384 * 2.66)
    # The official release's sentence vectors are 768-d (BERT-base); ours are 384-d.
    image, text = torch.rand(1, 3, 16, 16), torch.randn(1, 768)
    used = parameters_used_in_forward(TextPromptIR(dataclasses.replace(config, text_dim=768)), image, text)
    assert used == pytest.approx(39.9e6, rel=0.01)
    ours = parameters_used_in_forward(model, image, torch.randn(1, 384))
    assert ours == pytest.approx(39.48e6, rel=0.01)


def test_every_parameter_learns():
    model = untrained_model().train()
    image, text = torch.rand(2, 3, 32, 32), torch.randn(2, 384)
    model(image, text).abs().mean().backward()
    silent = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert silent == []


def test_untrained_network_is_the_identity():
    model = TextPromptIR(SIZES["lite"]).eval()
    image = torch.rand(1, 3, 24, 40)
    with torch.no_grad():
        assert torch.equal(model(image, torch.randn(1, 384)), image)


def test_a_deepened_network_computes_what_the_trained_one_did_and_its_new_blocks_learn():
    torch.manual_seed(1)
    trained = TextPromptIR(dataclasses.replace(SIZES["lite"], blocks=(1, 1, 1, 2))).eval()
    trained.output.reset_parameters()  # else both networks are the identity
    deep = TextPromptIR(dataclasses.replace(SIZES["lite"], blocks=(2, 2, 1, 4), refinement_blocks=1))
    grow(deep, trained)
    image, text = torch.rand(2, 3, 24, 40), torch.randn(2, 384)
    with torch.no_grad():  # the CPU's strip path
        assert torch.equal(deep.eval()(image, text), trained(image, text))
    restored = deep.train()(image, text)  # the whole-map path
    assert torch.equal(restored, trained.train()(image, text))
    restored.abs().mean().backward()
    new = [deep.encoders[0].blocks[1], deep.encoders[1].blocks[1], deep.latent.blocks[2], deep.refinement.blocks[0]]
    for block in new:
        assert block.igfn.body.project.weight.grad.abs().sum() > 0
        assert block.imta.body.project.weight.grad.abs().sum() > 0


def test_only_depth_and_the_upsampling_can_grow():
    trained = untrained_model()
    with pytest.raises(ValueError, match="only more blocks"):
        grow(TextPromptIR(dataclasses.replace(SIZES["lite"], width=16)), trained)
    with pytest.raises(ValueError, match="only more blocks"):
        grow(TextPromptIR(dataclasses.replace(SIZES["lite"], blocks=(1, 1, 1, 1))), trained)
    smooth = TextPromptIR(dataclasses.replace(SIZES["lite"], upsample="bilinear"))
    with pytest.raises(ValueError, match="bilinear upsampling"):
        grow(TextPromptIR(SIZES["lite"]), smooth)  # a grid-free network is not turned back


def test_pixel_shuffle_becomes_bilinear_with_the_mean_of_its_sub_pixel_kernels():
    """Where the four sub-pixel kernels agree, pixel-shuffle is nearest-neighbour upsampling of one conv; the
    converted network runs that conv and upsamples bilinearly, so on a smooth image both give nearly the same."""
    torch.manual_seed(2)
    trained = TextPromptIR(dataclasses.replace(SIZES["lite"], blocks=(1, 1, 1, 1))).eval()
    trained.output.reset_parameters()
    with torch.no_grad():
        for upsample in trained.upsamples:
            by_position = upsample[0].weight.view(-1, 4, *upsample[0].weight.shape[1:])  # (C/2, 4, C, 3, 3)
            by_position.copy_(by_position[:, :1].expand_as(by_position))
    smooth = TextPromptIR(dataclasses.replace(trained.config, upsample="bilinear")).eval()
    grow(smooth, trained)
    for level, upsample in enumerate(smooth.upsamples):
        torch.testing.assert_close(upsample.conv.weight, trained.upsamples[level][0].weight[::4])
    ramp = torch.linspace(0, 1, 64)
    image = (ramp[None, :] * ramp[:, None]).expand(1, 3, 64, 64).contiguous()
    text = torch.randn(1, 384)
    with torch.no_grad():
        before, after = trained(image, text), smooth(image, text)
    assert (after - before).abs().mean() < 0.1 * (before - image).abs().mean()


@pytest.mark.parametrize("channels, heads", [(16, 1), (64, 4)])
def test_blocks_keep_the_shape(channels, heads):
    x = torch.randn(2, channels, 12, 20)
    prompt = torch.randn(2, 384)
    assert TransposedAttention(channels, heads)(x).shape == x.shape
    assert GatedDconvFeedForward(channels, 2.66)(x).shape == x.shape
    assert IntegratedTransformerBlock(channels, heads, 2.66, 384)(x, prompt).shape == x.shape


def test_attention_cost_grows_linearly_with_pixels():
    attention = TransposedAttention(16, 2)

    def macs(height: int, width: int) -> int:
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            attention(torch.randn(1, 16, height, width))
        return counter.get_total_flops()

    # Linear in the pixels plus a small per-image constant: doubling the added pixels doubles the
    # added cost (pixel attention would quadruple it).
    assert macs(64, 128) - macs(64, 64) == 2 * (macs(64, 64) - macs(64, 32))


def test_layer_norm_matches_torch_and_keeps_channels_last():
    norm = LayerNorm2d(8)
    torch.nn.init.normal_(norm.weight)
    torch.nn.init.normal_(norm.bias)
    x = torch.randn(2, 8, 5, 7).contiguous(memory_format=torch.channels_last)
    expected = torch.nn.functional.layer_norm(x.permute(0, 2, 3, 1), (8,), norm.weight, norm.bias).permute(0, 3, 1, 2)
    out = norm(x)
    torch.testing.assert_close(out, expected)
    assert out.is_contiguous(memory_format=torch.channels_last)


def test_the_text_embedding_steers_every_level():
    model = untrained_model()
    image = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        a = model(image, torch.randn(1, 384))
        b = model(image, torch.randn(1, 384))
    assert (a - b).abs().mean() > 1e-3


def test_a_batch_mixes_prompts_independently():
    model = untrained_model()
    images, texts = torch.rand(2, 3, 16, 16), torch.randn(2, 384)
    with torch.no_grad():
        batched = model(images, texts)
        single = model(images[1:], texts[1:])
    torch.testing.assert_close(batched[1:], single, rtol=1e-4, atol=1e-5)


def test_config_rejects_heads_that_do_not_divide_channels():
    with pytest.raises(ValueError, match="heads"):
        ModelConfig(width=12, blocks=(1, 1, 1, 1), heads=(5, 2, 4, 8), refinement_blocks=0)


def test_config_round_trips_through_json():
    config = SIZES["lite"]
    assert ModelConfig.from_json(config.to_json()) == config


def straightforward_attention(module: TransposedAttention, x: torch.Tensor) -> torch.Tensor:
    """MDTA as Restormer writes it: normalised Q and K per head, softmax, A V, then the projection."""
    b, c, h, w = x.shape
    qkv = module.qkv_local(module.qkv(x)).reshape(b, 3, module.heads, c // module.heads, h * w)
    q, k, v = qkv.unbind(dim=1)
    q, k = torch.nn.functional.normalize(q, dim=-1), torch.nn.functional.normalize(k, dim=-1)
    attention = ((q @ k.transpose(-2, -1)) * module.temperature).softmax(dim=-1)
    return module.project((attention @ v).reshape(b, c, h, w))


@pytest.mark.parametrize("channels_last", [True, False])
@pytest.mark.parametrize("channels, heads", [(14, 1), (56, 4), (112, 8)])
def test_fast_attention_computes_what_restormer_does(channels, heads, channels_last):
    torch.manual_seed(0)
    module = TransposedAttention(channels, heads)
    with torch.no_grad():
        module.temperature.uniform_(0.3, 3.0)
    x = torch.randn(2, channels, 24, 40)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        fast, reference = module(x), straightforward_attention(module, x)
    assert (fast - reference).abs().max() <= 1e-4 * reference.abs().max()


@pytest.mark.slow
def test_the_model_exports_with_dynamic_sizes_to_operators_that_onnx_and_openvino_convert():
    """Neither converter takes diagonal views, writes into them, or Python floats of symbolic sizes
    (benchmarks/runtime_study.py exports the shipped model for both)."""
    torch.manual_seed(0)
    model = TextPromptIR(ModelConfig(width=8, blocks=(1, 1, 1, 1), heads=(1, 2, 2, 4), refinement_blocks=0))
    model.output.reset_parameters()
    model.eval().requires_grad_(False)
    text = torch.randn(1, 384)
    height, width = torch.export.Dim("height", max=1024), torch.export.Dim("width", max=1024)
    program = torch.export.export(
        model, (torch.rand(1, 3, 32, 32), text), dynamic_shapes=({2: 8 * height, 3: 8 * width}, None)
    )
    targets = [str(node.target) for node in program.graph.nodes if node.op == "call_function"]
    assert "aten.softmax.int" in targets
    assert [t for t in targets if any(word in t for word in ("diagonal", "copy_", "truediv", "sym_float"))] == []
    other_size = torch.rand(1, 3, 48, 40)
    with torch.no_grad():
        assert torch.allclose(program.module()(other_size, text), model(other_size, text), atol=1e-5)


def test_text_modulation_matches_its_formula():
    torch.manual_seed(0)
    module = TextModulation(32, 48)
    x = torch.randn(2, 32, 16, 24).contiguous(memory_format=torch.channels_last)
    prompt = torch.randn(2, 48)
    with torch.no_grad():
        gate = torch.sigmoid(module.channel_gate(x.mean(dim=(2, 3)).unsqueeze(1)).squeeze(1))
        gamma, beta = module.film(module.prompt_to_channels(prompt) * gate)[:, :, None, None].chunk(2, dim=1)
        expected = x * (1 + gamma) + beta
        assert (module(x, prompt) - expected).abs().max() <= 1e-5 * expected.abs().max()


@pytest.mark.parametrize("channels_last", [True, False])
@pytest.mark.parametrize("batch, height", [(1, 37), (2, 24)])
def test_blocks_give_the_same_result_in_strips(monkeypatch, channels_last, batch, height):
    """CPU inference runs each block strip by strip (textpromptir/model/strips.py); training on whole maps."""
    torch.manual_seed(0)
    block = IntegratedTransformerBlock(28, 2, 2.66, 48)
    with torch.no_grad():
        for parameter in block.parameters():  # away from the identity-like initialisation
            parameter.normal_(0, 0.3)
    x = torch.randn(batch, 28, height, 20)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    prompt = torch.randn(batch, 48)
    with torch.no_grad():
        whole = block(x, prompt)
        monkeypatch.setattr(strips, "STRIP_BYTES", 1)  # strips of the minimum height, 4 rows, plus a short last one
        assert strips.strip_rows(20, 84, 4) == 4
        block.in_strips = True
        in_strips = block(x, prompt)
    assert (in_strips - whole).abs().max() <= 1e-4 * whole.abs().max()
    if channels_last:
        assert in_strips.is_contiguous(memory_format=torch.channels_last)


def test_strips_cover_every_row_once():
    assert list(strips.strips(10, 4)) == [(0, 4), (4, 8), (8, 10)]
    assert list(strips.strips(3, 4)) == [(0, 3)]


@pytest.mark.parametrize("size", ["naf", "hybrid"])
def test_candidates_attend_only_from_their_level_and_every_parameter_learns(size):
    model = untrained_model(size=size).train()
    stages = [*model.encoders, model.latent]
    attends = [isinstance(stage.blocks[0], IntegratedTransformerBlock) for stage in stages]
    assert attends == [level >= model.config.attention_from for level in range(4)]
    assert all(isinstance(block, NAFBlock) for block in model.encoders[0].blocks)
    image, text = torch.rand(2, 3, 32, 32), torch.randn(2, 384)
    model(image, text).abs().mean().backward()
    silent = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert silent == []


def test_the_prompt_modulates_every_naf_block():
    model = untrained_model(size="naf")
    blocks = [block for stage in [*model.encoders, model.latent, *model.decoders] for block in stage.blocks]
    assert len(blocks) == 1 + 2 + 4 + 8 + 4 + 2 + 1
    for block in blocks:
        assert isinstance(block.mixer.modulation, TextModulation)
        assert isinstance(block.feedforward.modulation, TextModulation)
    image = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert (model(image, torch.randn(1, 384)) - model(image, torch.randn(1, 384))).abs().mean() > 1e-3


@pytest.mark.parametrize("size", ["naf", "hybrid"])
def test_untrained_candidates_are_the_identity_and_same_in_training_and_inference(size):
    assert torch.equal(TextPromptIR(SIZES[size]).eval()(image := torch.rand(1, 3, 24, 40), torch.randn(1, 384)), image)
    model = untrained_model(size=size)
    image, text = torch.rand(1, 3, 24, 40), torch.randn(1, 384)
    with torch.no_grad():  # the hybrid's transformer blocks run in strips here
        inference = model.eval().run_in_strips()(image, text)
    torch.testing.assert_close(model.train().run_in_strips(False)(image, text), inference, rtol=1e-4, atol=1e-5)


def test_a_deepened_naf_network_computes_what_the_trained_one_did():
    torch.manual_seed(1)
    trained = TextPromptIR(dataclasses.replace(SIZES["naf"], blocks=(1, 1, 1, 2))).eval()
    trained.output.reset_parameters()
    deep = TextPromptIR(SIZES["naf"]).eval()
    grow(deep, trained)
    image, text = torch.rand(2, 3, 24, 40), torch.randn(2, 384)
    with torch.no_grad():
        torch.testing.assert_close(deep(image, text), trained(image, text))


@pytest.mark.parametrize("kind, grid", [("pixel_shuffle", True), ("bilinear", False)])
def test_only_pixel_shuffle_can_print_a_grid_on_a_flat_image(kind, grid):
    """Whatever the weights, bilinear upsampling of a flat map is flat; pixel-shuffle's sub-pixel kernels differ."""
    torch.manual_seed(0)
    layer = make_upsample(kind, 8)
    flat = torch.ones(1, 8, 8, 8)
    with torch.no_grad():
        out = layer(flat)[:, :, 4:-4, 4:-4]  # away from the zero-padded border
    assert out.shape[1] == 4
    spread = (out - out.mean(dim=(2, 3), keepdim=True)).abs().max()
    assert (spread > 1e-3) == grid


def test_configs_saved_before_the_candidates_existed_load_as_they_were():
    old = '{"blocks": [1, 2, 2, 4], "expansion": 2.66, "heads": [1, 2, 4, 8], "prompt_dim": 384, '
    old += '"refinement_blocks": 0, "text_dim": 384, "width": 14}'
    assert ModelConfig.from_json(old) == SIZES["lite"]
    assert isinstance(TextPromptIR(SIZES["lite"]).upsamples[0], Upsample)


def test_config_rejects_unknown_upsampling_and_levels():
    with pytest.raises(ValueError, match="upsample"):
        dataclasses.replace(SIZES["lite"], upsample="nearest-ish")
    with pytest.raises(ValueError, match="attention_from"):
        dataclasses.replace(SIZES["lite"], attention_from=5)


def test_the_strip_path_runs_only_when_asked_and_never_with_gradients(monkeypatch):
    """Inference in strips is an explicit mode (the Restorer sets it on the CPU), not a guess from the grad mode."""
    calls = []
    monkeypatch.setattr("textpromptir.model.block.attention_in_strips", lambda *args: calls.append(args) or args[1])
    model = untrained_model()
    image, text = torch.rand(1, 3, 16, 16), torch.randn(1, 384)
    with torch.no_grad():
        model.eval()(image, text)
        assert calls == []
        model.run_in_strips()(image, text)
        assert len(calls) == sum(isinstance(module, IntegratedTransformerBlock) for module in model.modules()) > 0
    with pytest.raises(RuntimeError, match="run_in_strips"):
        model.train()(image, text)
