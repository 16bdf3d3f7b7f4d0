"""StyleGAN2: generator and discriminator (registered as ``stylegan2``), layers, configs, checkpoint import.

``create_generator("stylegan2", size=32, channel_base=512, channel_max=32, z_dim=32, w_dim=32, n_mlp=2)``
or the reference ``stylegan2:size=256,config=paper256``; ``create_discriminator("stylegan2", size=32, ...)``.
"""

from pocketgan.models.stylegan2.configs import PRESETS, default_widths, resolve_config
from pocketgan.models.stylegan2.discriminator import StyleGAN2Discriminator
from pocketgan.models.stylegan2.generator import MappingNetwork, StyleGAN2Generator, SynthesisLayer, SynthesisNetwork
from pocketgan.models.stylegan2.layers import Blur, ConstantInput, Demodulation, EqualConv2d, EqualLinear

__all__ = [
    "PRESETS",
    "Blur",
    "ConstantInput",
    "Demodulation",
    "EqualConv2d",
    "EqualLinear",
    "MappingNetwork",
    "StyleGAN2Discriminator",
    "StyleGAN2Generator",
    "SynthesisLayer",
    "SynthesisNetwork",
    "default_widths",
    "resolve_config",
]

from pocketgan.models import stylegan2_pruners as _pruners  # noqa: E402,F401  (registers the layers' pruners)
