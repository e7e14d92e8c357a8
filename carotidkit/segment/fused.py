"""A trained Keras U-Net as a plain torch inference module: BatchNorm folded, channels first.

Keras 3 on the torch backend runs each Keras layer as its own op sequence: a convolution's input
is made contiguous in channels-first order, BatchNorm, the activation and every squeeze-excite
step are separate kernels, with Keras' call machinery around each. :func:`fuse` walks the
model's layer graph once and writes a torch module of the same function, with

- every BatchNorm folded into the convolution before it (``w * γ/σ``, ``(b - μ) γ/σ + β``),
- the activation applied in the same step, and the input rescaling folded into a per-channel
  affine step,
- tensors kept in torch's NCHW layout throughout (one transpose in, one out),
- Dropout dropped (inference) and squeeze-excite's reshape a ``view``.

The result is numerically the Keras model's prediction (float32 rounding: the tests bound the
largest difference of probabilities at 1e-4 on all three workshop backbones) and is 02's
inference path whenever torch is importable (:func:`carotidkit.segment.ensemble.predict`).
Only the layer types the U-Nets of :mod:`carotidkit.segment.unet` use are supported; any other
layer raises ``NotImplementedError`` naming it, and :func:`~carotidkit.segment.ensemble.predict`
then falls back to ``model.predict``.
"""

from __future__ import annotations

import math

import numpy as np

#: Keras activation name -> torch function name (``torch.nn.functional``)
_ACTIVATIONS = {"linear": None, "relu": "relu", "silu": "silu", "swish": "silu", "sigmoid": "sigmoid"}


def _act(name):
    import torch.nn.functional as F

    if name not in _ACTIVATIONS:
        raise NotImplementedError(f"activation {name!r}")
    fn = _ACTIVATIONS[name]
    return None if fn is None else getattr(F, fn)


def _same_pad(size: int, k: int, s: int, d: int) -> tuple[int, int]:
    """TensorFlow's 'same' padding (before, after) for one spatial axis."""
    total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
    return total // 2, total - total // 2


class _Step:
    """One op of the fused graph: ``out = fn(*[values[i] for i in ins])``."""

    def __init__(self, kind, layer, ins, out, fn=None):
        self.kind, self.layer, self.ins, self.out, self.fn = kind, layer, ins, out, fn
        self.act = "linear"


def _conv_params(layer):
    """(torch weight [Cout, Cin/groups, kh, kw], bias or None, groups) of a Conv2D/DepthwiseConv2D."""
    from keras import layers

    ws = layer.get_weights()
    k = ws[0].astype(np.float32)
    b = ws[1].astype(np.float32) if len(ws) > 1 else None
    if isinstance(layer, layers.DepthwiseConv2D):
        kh, kw, cin, mult = k.shape
        w = k.reshape(kh, kw, 1, cin * mult).transpose(3, 2, 0, 1)
        groups = cin
    else:
        w = k.transpose(3, 2, 0, 1)
        groups = int(layer.groups or 1)
    return np.ascontiguousarray(w), b, groups


def _graph(model):
    """Layers in execution order as (layer, [input tensor ids], output tensor id)."""
    nodes = []
    for depth in sorted(model._nodes_by_depth, reverse=True):
        for node in model._nodes_by_depth[depth]:
            nodes.append((node.operation, [id(t) for t in node.input_tensors], [id(t) for t in node.output_tensors]))
    return nodes


class FusedUNet:
    """Callable: ``fused(X)`` with ``X`` float32 ``[N, H, W, 1]`` (0..255) → probabilities ``[N, H, W, 1]``.

    Build with :func:`fuse`; ``steps`` lists the fused ops (``kind`` says what each became)."""

    def __init__(self, steps, input_id, output_id, consts):
        self.steps, self.input_id, self.output_id, self.consts = steps, input_id, output_id, consts

    def forward(self, x):
        """Torch NCHW in, NCHW out (no gradient bookkeeping; call under ``torch.inference_mode``)."""
        vals = {self.input_id: x}
        for st in self.steps:
            vals[st.out] = st.fn(*[vals[i] for i in st.ins])
            for i in st.ins:  # free what no later step reads (keeps peak memory at one batch's)
                if self._last_use[i] is st:
                    vals.pop(i, None)
        return vals[self.output_id]

    def _index_uses(self):
        self._last_use = {}
        for st in self.steps:
            for i in st.ins:
                self._last_use[i] = st

    def __call__(self, X: np.ndarray, batch_size: int = 32) -> np.ndarray:
        import torch

        X = np.asarray(X, np.float32)
        out = []
        with torch.inference_mode():
            for k in range(0, len(X), batch_size):
                x = torch.from_numpy(np.ascontiguousarray(X[k : k + batch_size].transpose(0, 3, 1, 2)))
                out.append(self.forward(x).permute(0, 2, 3, 1).numpy())
        return np.concatenate(out) if out else np.zeros((0, *X.shape[1:3], 1), np.float32)


def fuse(model) -> FusedUNet:
    """Translate a Keras U-Net (any backend; its weights are read as numpy) into a :class:`FusedUNet`.

    Raises ``NotImplementedError`` naming the first layer it cannot translate.
    """
    import torch
    import torch.nn.functional as F

    t = _Translator(_graph(model))
    for layer, ins, outs in t.nodes:
        t.translate(layer, [t.src(i) for i in ins], outs[0])
    if t.input_id is None:
        raise NotImplementedError("model without an InputLayer")
    (output_t,) = model.outputs
    consts = []
    for st in t.steps:
        st.fn = _compile_step(st, torch, F, consts)
    fused = FusedUNet(t.steps, t.input_id, t.src(id(output_t)), consts)
    fused._index_uses()
    return fused


class _Translator:
    """The graph walk of :func:`fuse`: one method per Keras layer kind, each appending a step or
    merging the layer into the step that produces its input (when nothing else reads that)."""

    def __init__(self, nodes):
        self.nodes, self.steps, self.producer, self.input_id = nodes, [], {}, None
        self.alias: dict[int, int] = {}  # tensors that are another tensor (Dropout)
        self.consumers: dict[int, int] = {}
        for _, ins, _ in nodes:
            for i in ins:
                self.consumers[i] = self.consumers.get(i, 0) + 1

    def src(self, i):
        while i in self.alias:
            i = self.alias[i]
        return i

    def foldable(self, i, kinds):
        """The step producing tensor ``i`` if it is of ``kinds``, has no activation yet and
        nothing else reads ``i``: a following per-channel op may be merged into it."""
        st = self.producer.get(i)
        ok = st is not None and st.kind in kinds and st.act == "linear" and self.consumers.get(i, 0) == 1
        return st if ok else None

    def add(self, st, out):
        self.steps.append(st)
        self.producer[out] = st

    def merged(self, st, out):
        st.out = out
        self.producer[out] = st

    def translate(self, layer, ins, out):
        from keras import layers

        simple = {
            layers.Add: "add",
            layers.Multiply: "mul",
            layers.Concatenate: "cat",
            layers.GlobalAveragePooling2D: "gap",
            layers.Reshape: "unflatten",
            layers.UpSampling2D: "up",
        }
        for cls, method in (
            (layers.InputLayer, self.input),
            (layers.Dropout, self.dropout),
            ((layers.Conv2D, layers.DepthwiseConv2D), self.conv),
            (layers.BatchNormalization, self.batchnorm),
            ((layers.Activation, layers.ReLU), self.activation),
            ((layers.Rescaling, layers.Normalization), self.affine),
            (layers.ZeroPadding2D, self.pad),
        ):
            if isinstance(layer, cls):
                return method(layer, ins, out)
        kind = next((k for cls, k in simple.items() if isinstance(layer, cls)), None)
        if kind is None:
            raise NotImplementedError(f"layer {layer.name} ({type(layer).__name__}) has no fused translation")
        return self.add(_simple_step(kind, layer, ins, out), out)

    def input(self, layer, ins, out):
        self.input_id = out

    def dropout(self, layer, ins, out):  # identity at inference
        self.alias[out] = ins[0]
        self.consumers[ins[0]] = self.consumers.get(ins[0], 0) - 1 + self.consumers.get(out, 0)

    def conv(self, layer, ins, out):
        st = _Step("conv", layer, ins, out)
        st.w, st.b, st.groups = _conv_params(layer)
        st.stride, st.dilation, st.padding = tuple(layer.strides), tuple(layer.dilation_rate), layer.padding
        st.act = layer.activation.__name__ if layer.activation is not None else "linear"
        st.pre_pad, st.shape_in = None, tuple(layer.input.shape[1:3])
        pad = self.foldable(ins[0], ("pad",))  # a ZeroPadding2D just before it: one step
        if pad is not None:
            st.pre_pad, st.ins = pad.pad, pad.ins
            self.steps.remove(pad)
        self.add(st, out)

    def batchnorm(self, layer, ins, out):
        gamma, beta, mean, var = (w.astype(np.float64) for w in _bn_weights(layer))
        scale = gamma / np.sqrt(var + layer.epsilon)
        shift = beta - mean * scale
        st = self.foldable(ins[0], ("conv",))
        if st is None:
            st = _Step("affine", layer, ins, out)
            st.scale, st.shift = scale.astype(np.float32), shift.astype(np.float32)
            return self.add(st, out)
        st.w = (st.w * scale[:, None, None, None]).astype(np.float32)
        b0 = st.b.astype(np.float64) if st.b is not None else 0.0
        st.b, st.kind = (b0 * scale + shift).astype(np.float32), "conv+bn"
        self.merged(st, out)

    def activation(self, layer, ins, out):
        from keras import layers

        cfg = layer.get_config()
        if isinstance(layer, layers.ReLU):
            if cfg.get("negative_slope", 0) or cfg.get("threshold", 0) or cfg.get("max_value") not in (None, 6.0):
                raise NotImplementedError(f"layer {layer.name} (ReLU {cfg})")
            act = "relu6" if cfg.get("max_value") == 6.0 else "relu"
        else:
            act = cfg["activation"]
            _act(act)  # raises for an activation without a translation
        st = self.foldable(ins[0], ("conv", "conv+bn", "affine"))
        if st is None:
            st = _Step("act", layer, ins, out)
            st.act = act
            return self.add(st, out)
        st.act = act
        self.merged(st, out)

    def affine(self, layer, ins, out):
        """Rescaling (x a + b) and Normalization ((x - mean) / max(sqrt(var), eps)), merged into
        an affine step before them."""
        from keras import layers

        if isinstance(layer, layers.Rescaling):
            scale, shift = np.float64(layer.scale), np.float64(layer.offset)
        else:
            mean, var = (np.asarray(v, np.float64).reshape(-1) for v in layer.get_weights()[:2])
            scale = 1.0 / np.maximum(np.sqrt(var), 1e-7)
            shift = -mean * scale
        prev = self.foldable(ins[0], ("affine",))
        if prev is None:
            st = _Step("affine", layer, ins, out)
            st.scale, st.shift = _f32(scale), _f32(shift)
            return self.add(st, out)
        # (x a + b) * s + t  ->  x (a s) + (b s + t)
        a, b = np.asarray(prev.scale, np.float64), np.asarray(prev.shift, np.float64)
        prev.scale, prev.shift = _f32(a * scale), _f32(b * scale + shift)
        self.merged(prev, out)

    def pad(self, layer, ins, out):
        (t, bt), (lf, r) = layer.padding
        st = _Step("pad", layer, ins, out)
        st.pad = (lf, r, t, bt)
        self.add(st, out)


def _f32(v):
    """float32 scalar or array."""
    return np.float32(v) if np.ndim(v) == 0 else np.asarray(v, np.float32)


def _simple_step(kind: str, layer, ins, out) -> _Step:
    """A step that keeps no weights (checking the options the translation supports)."""
    st = _Step(kind, layer, ins, out)
    if kind == "cat" and layer.axis not in (-1, 3):
        raise NotImplementedError(f"layer {layer.name} (Concatenate on axis {layer.axis})")
    if kind == "unflatten" and (len(layer.target_shape) != 3 or tuple(layer.target_shape[:2]) != (1, 1)):
        raise NotImplementedError(f"layer {layer.name} (Reshape to {layer.target_shape})")
    if kind == "up":
        if layer.interpolation not in ("bilinear", "nearest"):
            raise NotImplementedError(f"layer {layer.name} (UpSampling2D {layer.interpolation})")
        st.size, st.mode = tuple(layer.size), layer.interpolation
    if kind == "gap":
        st.keepdims = bool(layer.keepdims)
    return st


def _bn_weights(layer):
    """(gamma, beta, moving mean, moving variance) of a BatchNormalization, ones/zeros if absent."""
    ws = [np.asarray(w) for w in layer.get_weights()]
    c = ws[-1].shape[0]
    it = iter(ws)
    gamma = next(it) if layer.scale else np.ones(c, np.float32)
    beta = next(it) if layer.center else np.zeros(c, np.float32)
    mean, var = next(it), next(it)
    return gamma, beta, mean, var


def _compile_step(st, torch, F, consts):
    """The torch closure for one step (weights as tensors, kept alive in ``consts``)."""

    def tensor(a, shape=None):
        t = torch.from_numpy(np.ascontiguousarray(np.asarray(a, np.float32)))
        if shape is not None:
            t = t.reshape(shape)
        consts.append(t)
        return t

    act = getattr(st, "act", "linear")
    if act == "relu6":

        def actf(y):
            return torch.clamp_(y, 0.0, 6.0)

    else:
        actf = _act(act) or (lambda y: y)
    if st.kind in ("conv", "conv+bn"):
        w = tensor(st.w)
        b = tensor(st.b) if st.b is not None else None
        stride, dil, groups, pre = st.stride, st.dilation, st.groups, st.pre_pad
        kh, kw = st.w.shape[2:]
        if st.padding == "same":
            h, wd = st.shape_in
            if pre is not None:
                h, wd = h + pre[2] + pre[3], wd + pre[0] + pre[1]
            pt, pb = _same_pad(h, kh, stride[0], dil[0])
            pl, pr = _same_pad(wd, kw, stride[1], dil[1])
            if pre is not None:
                pre = (pre[0] + pl, pre[1] + pr, pre[2] + pt, pre[3] + pb)
            elif pt == pb and pl == pr:
                padding = (pt, pl)
            else:
                pre = (pl, pr, pt, pb)
        if pre is not None or st.padding != "same":
            padding = (0, 0)

        def conv(x):
            if pre is not None:
                x = F.pad(x, pre)
            return actf(F.conv2d(x, w, b, stride, padding, dil, groups))

        return conv
    if st.kind == "affine":
        scale = tensor(st.scale, (1, -1, 1, 1)) if np.ndim(st.scale) else float(st.scale)
        shift = tensor(st.shift, (1, -1, 1, 1)) if np.ndim(st.shift) else float(st.shift)
        return lambda x: actf(x * scale + shift)
    if st.kind == "act":
        return actf
    if st.kind == "pad":
        pad = st.pad
        return lambda x: F.pad(x, pad)
    if st.kind == "cat":
        return lambda *xs: torch.cat(xs, 1)
    if st.kind == "add":
        return lambda *xs: xs[0].add(xs[1]) if len(xs) == 2 else torch.stack(xs).sum(0)
    if st.kind == "mul":
        return lambda a, b: a * b
    if st.kind == "gap":
        keep = st.keepdims
        return lambda x: x.mean((2, 3), keepdim=keep)
    if st.kind == "unflatten":
        return lambda x: x.reshape(x.shape[0], -1, 1, 1)
    if st.kind == "up":
        size, mode = st.size, st.mode
        if mode == "bilinear":
            return lambda x: F.interpolate(x, scale_factor=size, mode="bilinear", align_corners=False)
        return lambda x: F.interpolate(x, scale_factor=size, mode="nearest")
    raise NotImplementedError(st.kind)
