"""Models: encoders and heads by name (registries), SiameseNet, exact ensembles.

The built-in components are registered here, in one place: encoders ``koch``, ``conv``,
``concat`` (ensembles) and ``views`` (test-time views); heads ``l1``, ``euclidean`` and
``local``. Register your own with ``register_encoder`` / ``register_head`` from anywhere, no edit
to the package needed.
"""

from .encoders import (
                       ConvEncoder,
                       Encoder,
                       KochEncoder,
                       create_encoder,
                       list_encoders,
                       register_encoder,
)
from .ensemble import ConcatEncoder, ensemble
from .heads import (
                    EuclideanHead,
                    Head,
                    L1Head,
                    LocalHead,
                    create_head,
                    list_heads,
                    register_head,
)
from .siamese import ModelSpec, SiameseNet, build_model
from .views import VIEW_SETS, ViewsEncoder, with_views

register_encoder("koch", KochEncoder)
register_encoder("conv", ConvEncoder)
register_encoder("concat", ConcatEncoder)
register_encoder("views", ViewsEncoder)
register_head("l1", L1Head)
register_head("euclidean", EuclideanHead)
register_head("local", LocalHead)

__all__ = ["ConcatEncoder", "ConvEncoder", "Encoder", "EuclideanHead", "Head", "KochEncoder",
           "L1Head", "LocalHead", "ModelSpec", "SiameseNet", "VIEW_SETS", "ViewsEncoder",
           "build_model", "create_encoder", "create_head", "ensemble", "list_encoders",
           "list_heads", "register_encoder", "register_head", "with_views"]
