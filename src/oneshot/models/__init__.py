from .encoders import ENCODERS, ConvEncoder, Encoder, KochEncoder, create_encoder, encoder_names
from .ensemble import ConcatEncoder, ensemble  # registers the "concat" encoder
from .heads import EuclideanHead, L1Head, create_head
from .siamese import ModelSpec, SiameseNet, build_model

__all__ = ["ENCODERS", "ConvEncoder", "Encoder", "KochEncoder", "create_encoder", "encoder_names",
           "EuclideanHead", "L1Head", "create_head", "ModelSpec", "SiameseNet", "build_model",
           "ConcatEncoder", "ensemble"]
