"""U-Net on ``keras.applications`` encoders (grayscale in, plaque probability out).

The encoder is any of :data:`BACKBONES`, built with ``weights=None`` (nothing is downloaded);
pretrained weights are opt-in from a local file. The decoder upsamples and concatenates the
encoder's stride-16/8/4/2 features. Written with Keras layers and ``keras.ops`` only, so it runs
on the TensorFlow and the torch backends.
"""

from __future__ import annotations

from . import keras_quietly

keras = keras_quietly()
import numpy as np  # noqa: E402  (after keras_quietly: it silences TF before keras loads)
from keras import layers, ops  # noqa: E402

#: backbone -> (keras.applications constructor name, skip layers from stride 2 to 16, bottleneck, kwargs)
BACKBONES: dict[str, tuple[str, list[str], str, dict]] = {
    "mobilenetv2": (
        "MobileNetV2",
        ["block_1_expand_relu", "block_3_expand_relu", "block_6_expand_relu", "block_13_expand_relu"],
        "out_relu",
        {"alpha": 0.5},
    ),
    "efficientnetb0": (
        "EfficientNetB0",
        [
            "block2a_expand_activation",
            "block3a_expand_activation",
            "block4a_expand_activation",
            "block6a_expand_activation",
        ],
        "top_activation",
        {},
    ),
    "efficientnetv2b0": (
        "EfficientNetV2B0",
        ["block1a_project_activation", "block2b_add", "block4a_expand_activation", "block6a_expand_activation"],
        "top_activation",
        {"include_preprocessing": False},
    ),
    "resnet50": (
        "ResNet50",
        ["conv1_relu", "conv2_block3_out", "conv3_block4_out", "conv4_block6_out"],
        "conv5_block3_out",
        {},
    ),
    "vgg16": ("VGG16", ["block2_conv2", "block3_conv3", "block4_conv3", "block5_conv3"], "block5_pool", {}),
    "densenet121": ("DenseNet121", ["conv1_relu", "pool2_conv", "pool3_conv", "pool4_conv"], "relu", {}),
}


def _conv_block(x, filters: int, name: str):
    for i in (1, 2):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv{i}")(x)
        x = layers.BatchNormalization(name=f"{name}_bn{i}")(x)
        x = layers.Activation("relu", name=f"{name}_relu{i}")(x)
    return x


def build_unet(
    backbone: str = "mobilenetv2",
    input_size: int = 128,
    decoder_filters=(128, 64, 32, 16, 8),
    weights_path: str | None = None,
    name: str | None = None,
    bn_momentum: float = 0.9,
) -> keras.Model:
    """A U-Net for ``input_size`` x ``input_size`` grayscale images (uint8 scaled to [0, 1] inside).

    ``weights_path``: optional local ``.h5``/``.weights.h5`` file of encoder weights (opt-in;
    never downloaded).

    Example:
        >>> model = build_unet("mobilenetv2", 64)
        >>> model.output_shape
        (None, 64, 64, 1)
    """
    if backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {backbone!r}; choose from {', '.join(BACKBONES)}")
    if input_size % 32:
        raise ValueError(f"input_size must be a multiple of 32 (got {input_size})")
    ctor, skips, bottleneck, kw = BACKBONES[backbone]
    inp = keras.Input((input_size, input_size, 1), name="image")
    # grayscale -> 3 channels so ImageNet-shaped weights can be loaded; scale to what each expects
    x = layers.Concatenate(name="gray_to_rgb")([inp, inp, inp])
    if backbone == "efficientnetb0":
        x3 = x  # EfficientNet rescales 0..255 itself
    else:
        x3 = layers.Rescaling(1 / 127.5, offset=-1.0, name="scale")(x)
    encoder = getattr(keras.applications, ctor)(include_top=False, weights=None, input_tensor=x3, **kw)
    if weights_path:
        encoder.load_weights(weights_path, skip_mismatch=True)
    feats = [encoder.get_layer(s).output for s in skips]
    x = encoder.get_layer(bottleneck).output
    for i, (skip, f) in enumerate(zip(reversed(feats), decoder_filters)):
        x = layers.UpSampling2D(2, interpolation="bilinear", name=f"dec{i}_up")(x)
        x = layers.Concatenate(name=f"dec{i}_cat")([x, skip])
        x = _conv_block(x, f, f"dec{i}")
    x = layers.UpSampling2D(2, interpolation="bilinear", name="dec_final_up")(x)
    x = _conv_block(x, decoder_filters[-1], "dec_final")
    # output bias at the plaque prior (~2 % of pixels): training starts from "no plaque"
    out = layers.Conv2D(
        1,
        1,
        activation="sigmoid",
        name="plaque_prob",
        dtype="float32",
        bias_initializer=keras.initializers.Constant(-4.0),
    )(x)
    model = keras.Model(inp, out, name=name or f"unet_{backbone}")
    # keras.applications use BatchNorm momentum 0.99-0.999, tuned for ImageNet-length training;
    # from scratch on a few hundred images the moving statistics would stay near their initial
    # values and inference would differ from training. 0.9 tracks them within an epoch.
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            layer.momentum = bn_momentum
    return model


# ----------------------------------------------------------------------------- losses and metrics


def dice_coefficient(y_true, y_pred, smooth: float = 1.0):
    """Soft Dice over each image, averaged over the batch (keras.ops: any backend)."""
    y_true = ops.cast(y_true, "float32")
    axes = (1, 2, 3)
    inter = ops.sum(y_true * y_pred, axis=axes)
    denom = ops.sum(y_true, axis=axes) + ops.sum(y_pred, axis=axes)
    return ops.mean((2 * inter + smooth) / (denom + smooth))


def iou_coefficient(y_true, y_pred, threshold: float = 0.5, smooth: float = 1.0):
    """Hard IoU at ``threshold``, per image, averaged over the batch."""
    y_true = ops.cast(y_true, "float32")
    p = ops.cast(y_pred > threshold, "float32")
    axes = (1, 2, 3)
    inter = ops.sum(y_true * p, axis=axes)
    union = ops.sum(y_true, axis=axes) + ops.sum(p, axis=axes) - inter
    return ops.mean((inter + smooth) / (union + smooth))


def dice_bce_loss(y_true, y_pred, bce_weight: float = 0.5, smooth: float = 1.0):
    """(1 - soft Dice over the whole batch) + ``bce_weight`` x binary cross-entropy.

    Batch-level Dice: per-image soft Dice is ~0 on plaque-free images whatever the model does
    (smoothing over thousands of near-zero probabilities), which would swamp the loss.
    """
    y_true = ops.cast(y_true, "float32")
    inter = ops.sum(y_true * y_pred)
    soft_dice = (2 * inter + smooth) / (ops.sum(y_true) + ops.sum(y_pred) + smooth)
    bce = ops.mean(keras.losses.binary_crossentropy(y_true, y_pred))
    return 1.0 - soft_dice + bce_weight * bce


def dice_metric(y_true, y_pred):
    return dice_coefficient(y_true, ops.cast(y_pred > 0.5, "float32"))


dice_metric.__name__ = "dice"
iou_coefficient.__name__ = "iou"
CUSTOM_OBJECTS = {"dice_bce_loss": dice_bce_loss, "dice": dice_metric, "iou": iou_coefficient}


def forward_flops(model: keras.Model) -> int:
    """Multiply-adds x 2 of one forward pass for one image (convolutions and dense layers).

    Training costs about three forward passes (forward + two for the backward pass).
    """
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            total += forward_flops(layer)
            continue
        try:
            out = layer.output.shape
        except (AttributeError, ValueError):
            continue
        if isinstance(layer, layers.DepthwiseConv2D):
            kh, kw, cin, mult = layer.kernel.shape
            total += 2 * out[1] * out[2] * kh * kw * cin * mult
        elif isinstance(layer, layers.Conv2D):
            kh, kw, cin, cout = layer.kernel.shape
            total += 2 * out[1] * out[2] * kh * kw * cin * cout
        elif isinstance(layer, layers.Dense):
            total += 2 * int(np.prod(layer.kernel.shape))
    return int(total)
