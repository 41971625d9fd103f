"""Pure ``nn.Module`` networks: generators take ``lq`` (B, 3, h, w) in [0, 1] and return ``sr``."""

from srlab.nets.autoencoder import Autoencoder
from srlab.nets.discriminators import UNetDiscriminatorSN, VanillaDiscriminator, VGGStyleDiscriminator
from srlab.nets.edsr import EDSR
from srlab.nets.rrdbnet import RRDBNet
from srlab.nets.srresnet import MSRResNet, SRResNet
from srlab.nets.srvgg import SRVGGNetCompact
from srlab.nets.swinir import SwinIR
from srlab.nets.vanilla import VanillaGenerator
from srlab.nets.vgg import VGGFeatureExtractor

__all__ = [
    "Autoencoder",
    "EDSR",
    "MSRResNet",
    "RRDBNet",
    "SRResNet",
    "SRVGGNetCompact",
    "SwinIR",
    "UNetDiscriminatorSN",
    "VGGFeatureExtractor",
    "VGGStyleDiscriminator",
    "VanillaDiscriminator",
    "VanillaGenerator",
]
