"""The public functional API, PyTorch's `torch.nn.functional`: one import line per op
module, so a reader sees where each function is implemented."""
from ..ops.activation import (  # noqa: F401
    celu, elu, gelu, glu, hardsigmoid, hardswish, hardtanh, leaky_relu, log_softmax,
    logsigmoid, mish, prelu, relu, relu6, selu, sigmoid, silu, softmax, softmin, softplus,
    softsign, tanh, threshold,
)
from ..ops.index import one_hot  # noqa: F401
from ..ops.linalg import linear  # noqa: F401
from ..ops.random import dropout  # noqa: F401
from ..ops.padding import pad  # noqa: F401
from ..ops.shape import pixel_shuffle, pixel_unshuffle  # noqa: F401
from ..ops.fold import fold, unfold  # noqa: F401
# Further op modules add their import line below, one per module.
from ..ops.loss import (  # noqa: F401
    binary_cross_entropy, binary_cross_entropy_with_logits, cross_entropy, kl_div, l1_loss,
    mse_loss, nll_loss, smooth_l1_loss,
)
from ..ops.conv import (  # noqa: F401
    conv1d, conv2d, conv3d, conv_transpose1d, conv_transpose2d, conv_transpose3d,
)
from ..ops.pooling import (  # noqa: F401
    adaptive_avg_pool1d, adaptive_avg_pool2d, adaptive_avg_pool3d, adaptive_max_pool1d,
    adaptive_max_pool2d, avg_pool1d, avg_pool2d, avg_pool3d, max_pool1d, max_pool2d, max_pool3d,
    max_unpool1d, max_unpool2d,
)
from ..ops.interpolate import (  # noqa: F401
    interpolate, upsample, upsample_bilinear, upsample_nearest,
)
from ..ops.distance import (  # noqa: F401
    cosine_similarity, normalize, pairwise_distance, pdist,
)
from ..ops.embedding import embedding  # noqa: F401
from ..ops.norm import (  # noqa: F401
    batch_norm, group_norm, instance_norm, layer_norm, local_response_norm, rms_norm,
)
from ..ops.attention import scaled_dot_product_attention  # noqa: F401
from ..ops.activation import (  # noqa: F401
    celu_, elu_, hardshrink, hardtanh_, leaky_relu_, relu_, rrelu, rrelu_, selu_, softshrink,
    tanhshrink, threshold_,
)
from ..ops.random import (  # noqa: F401
    alpha_dropout, dropout1d, dropout2d, dropout3d, feature_alpha_dropout,
)
from ..ops.pooling import (  # noqa: F401
    adaptive_max_pool1d_with_indices, adaptive_max_pool2d_with_indices, max_pool1d_with_indices,
    max_pool2d_with_indices, max_pool3d_with_indices,
)
from ..ops.loss import (  # noqa: F401
    cosine_embedding_loss, gaussian_nll_loss, hinge_embedding_loss, huber_loss,
    margin_ranking_loss, multilabel_soft_margin_loss, poisson_nll_loss, soft_margin_loss,
    triplet_margin_loss,
)
