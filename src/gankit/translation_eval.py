"""``gankit eval`` on an image-to-image run: its generator on the held-out inputs, scored against their targets.

- Super-resolution: PSNR and SSIM on the Y channel with a border of ``factor`` pixels shaved (the SR papers'
  convention; ``metrics.translation.sr_scores``), beside bicubic upsampling of the same inputs, the baseline.
- Paired translation: PSNR and SSIM of the outputs against the targets.
- Fashion-MNIST tasks: the Fréchet distance of the bundled classifier's features of the outputs against the real
  target images' (``fid``; for SR also bicubic's), which rewards sharp, plausible images where PSNR rewards the
  blurry mean.
- CycleGAN: the share of translations the bundled classifier puts in the target class, and the cycle
  reconstruction error mean |F(G(a)) - a| in pixels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import Tensor, nn

from .data import Dataset
from .translate import load_translator, translate

FASHION_TASKS = ("sr-fashion-mnist", "edges2fashion", "sneaker2boot")


def evaluate_translation(run_path: Path, data: Dataset, G: nn.Module, n: int | None = None,
                         checkpoint: str = "latest") -> dict[str, Any]:
    """The scores of a run's G (and, for CycleGAN, its F) on the first ``n`` held-out inputs (default: all)."""
    from .metrics.translation import bicubic_upsample, psnr, sr_scores, ssim

    t = data.translation
    source, target = t.held_source[:n], t.held_target[:n]
    out = translate(G, source)
    result: dict[str, Any] = {"task": t.task, "n": len(source)}
    how = {"inputs": f"the {len(source)} held-out inputs of {data.name} (never trained on)"}
    if t.task == "sr":
        result.update(sr_scores(out, target, t.factor))
        bicubic = bicubic_upsample(source, t.factor)
        result["bicubic"] = sr_scores(bicubic, target, t.factor)
        result["psnr_gain_db"] = result["psnr"] - result["bicubic"]["psnr"]
        how["psnr_ssim"] = (f"on the Y channel (ITU-R BT.601) with {t.factor} pixels shaved from each side; "
                            f"SSIM with an 11x11 Gaussian window (sigma 1.5)")
    elif t.paired:
        result["psnr"] = _finite_mean(psnr(out, target))
        result["ssim"] = float(ssim(out, target).mean())
        how["psnr_ssim"] = "on all channels; SSIM with an 11x11 Gaussian window (sigma 1.5)"
    if data.name in FASHION_TASKS:
        extractor = _fashion_classifier()
        real = t.held_target if t.paired else t.held_target[:n]
        real_features, _ = extractor(real)
        fake_features, logits = extractor(out)
        result["fid"] = _frechet(real_features, fake_features)
        how["fid"] = (f"Fréchet distance of gankit's bundled Fashion-MNIST classifier's features: outputs against "
                      f"{len(real)} real held-out target images")
        if t.task == "sr":
            result["bicubic"]["fid"] = _frechet(real_features, extractor(bicubic)[0])
        if not t.paired and t.classes:
            result["target_class_share"] = float((logits.argmax(1) == t.classes[1]).double().mean())
            how["target_class_share"] = (f"share of G(a) the classifier calls {extractor.classes[t.classes[1]]!r} "
                                         f"(class {t.classes[1]})")
    if not t.paired:
        F, _ = load_translator(run_path, checkpoint, reverse=True)
        back = translate(F, out)
        result["cycle_error"] = float((back - source).abs().mean())
        how["cycle_error"] = "mean |F(G(a)) - a| over the held-out inputs, in pixels in [0, 1]"
    result["how"] = how
    return result


def _finite_mean(values: Tensor) -> float:
    """The mean PSNR over the images, an identical image's infinite PSNR counted as 100 dB."""
    return float(values.clamp(max=100.0).mean())


def _fashion_classifier():
    from .metrics.features import get_extractor

    return get_extractor("fashion-mnist")


def _frechet(real: Tensor, fake: Tensor) -> float:
    from .metrics.frechet import frechet_distance, gaussian_stats

    return frechet_distance(gaussian_stats(real), gaussian_stats(fake))
