"""The DeepFM network (Guo et al. 2017) as a PyTorch module.

torch only: this module knows nothing of scikit-learn or of raw categories.
"""

from __future__ import annotations

import math
import threading
import weakref

import torch
from torch import nn
from torch.nn import functional as F

from ._codes import UNKNOWN_INDEX

#: Random bits per dropout decision: one byte each, so ``p`` is rounded to a
#: multiple of 1/256 (the scale uses the rounded rate, keeping expectations).
DROPOUT_LEVELS = 256


def dropout_mask(shape, p, generator, dtype, device):
    """A dropout multiplier: 0 with probability ``p`` (rounded), ``1 / (1 - p)`` else.

    Drawn from ``generator`` as raw bits, eight decisions per 64-bit draw:
    ``bernoulli_`` makes one float per element and costs several times more
    (on a 2-core CPU, 3 ms for 1024 x 400, about half a training step).
    """
    n = math.prod(shape)
    dropped = round(p * DROPOUT_LEVELS)
    if dropped == 0:
        return torch.ones(shape, dtype=dtype, device=device)
    if dropped >= DROPOUT_LEVELS:
        return torch.zeros(shape, dtype=dtype, device=device)
    # from=-2**63 with no upper bound draws all 64 bits: random_() alone
    # never sets the top bit, which would bias one byte in eight.
    words = torch.empty((n + 7) // 8, dtype=torch.int64, device=device)
    words.random_(-(2**63), None, generator=generator)
    byte = words.view(torch.uint8)[:n].view(shape)
    # clamp-and-shift gives the 0/1 keep flag as uint8: comparisons and
    # bool-to-float casts are several times slower on the CPU.
    keep = byte.clamp(dropped - 1, dropped).sub_(dropped - 1)
    return keep.to(dtype).mul_(DROPOUT_LEVELS / (DROPOUT_LEVELS - dropped))


class GeneratorDropout(nn.Dropout):
    """Dropout whose mask is drawn from a given ``torch.Generator``.

    ``nn.Dropout`` draws from torch's global generator, so training with it
    would change the caller's random state and could not be repeated from a
    seed alone. With a generator, the mask comes from :func:`dropout_mask`
    (``p`` rounded to a multiple of 1/256). Called without a generator it
    behaves as ``nn.Dropout``.
    """

    def forward(self, x, generator=None):
        """Drop entries of ``x`` of any shape with probability ``p``."""
        if not self.training or self.p == 0.0:
            return x
        if generator is None:
            return super().forward(x)
        return x * dropout_mask(x.shape, self.p, generator, x.dtype, x.device)


class DeepFMNetwork(nn.Module):
    """DeepFM: a factorization machine and a DNN over shared field embeddings.

    Every field ``f`` has ``field_dims[f]`` codes. One embedding table holds
    the vectors of all fields; the per-field ``offsets`` buffer shifts each
    field's codes into its own rows. The output sums three parts, each of
    shape ``(n_samples, n_outputs)``:

    - the first-order term: a learned weight per code, summed over fields,
      plus a bias;
    - the FM term: the sum over pairs of fields of the dot products of their
      embeddings, computed in O(n_fields) by the identity
      ``0.5 * ((sum_f e_f) ** 2 - sum_f e_f ** 2)`` summed over the embedding
      dimension;
    - the DNN term: ``Linear -> [BatchNorm] -> ReLU -> Dropout`` per hidden
      layer over the concatenated embeddings, then a linear output layer.

    With ``n_outputs > 1`` (one logit per class), the first-order weights and
    the DNN output have one column per output, and the FM term keeps the
    pairwise interaction vector ``0.5 * ((sum_f e_f) ** 2 - sum_f e_f ** 2)``
    of shape ``(n_samples, embedding_dim)`` and maps it to the outputs with a
    learned linear layer (``fm_projection``). With ``n_outputs == 1`` that
    layer is the fixed sum over dimensions of the original model.

    Parameters
    ----------
    field_dims : sequence of int
        Number of codes of each field, reserved codes included.
    embedding_dim : int, default=10
        Length of each embedding vector.
    hidden_layer_sizes : sequence of int, default=(400, 400, 400)
        Width of each hidden layer of the DNN; empty for no DNN.
    dropout : float, default=0.2
        Probability of zeroing a hidden unit during training.
    batch_norm : bool, default=True
        Whether to normalise each hidden layer's pre-activations.
    n_outputs : int, default=1
        Number of logits per sample.
    bag_mode : {"mean", "sum", "max"}, default="mean"
        How the element vectors of a multi-valued field are pooled into the
        field's vector (a row without elements gets zeros).
    init_std : float, default=0.01
        Standard deviation of the normal initialisation of the embeddings.
        Small on purpose: N(0, 1) vectors make the FM term, a sum of
        ``n_fields * (n_fields - 1) / 2`` dot products, start huge.
    fm_scale : float, default=1.0
        Multiplier of the FM second-order term (the paper's FM: 1). 0 turns
        the term off.
    generator : torch.Generator or None, default=None
        Source of the initial weights (a CPU generator); None uses torch's
        global generator.
    device : str or torch.device, default="cpu"
        Where the parameters live.

    Attributes
    ----------
    embedding : torch.nn.Embedding
        The shared embedding table, ``sum(field_dims)`` rows.
    linear : torch.nn.Embedding
        The first-order weights, ``sum(field_dims)`` rows of ``n_outputs``.
    bias : torch.nn.Parameter of shape (n_outputs,)
        The global bias.
    offsets : torch.Tensor of shape (n_fields,)
        Buffer: the first row of each field in the tables.
    dnn : torch.nn.ModuleList
        The hidden layers, in order.
    dnn_output : torch.nn.Linear
        The DNN's output layer.
    fm_projection : torch.nn.Linear or None
        Maps the FM interaction vector to the outputs when ``n_outputs > 1``.

    References
    ----------
    Guo, H., Tang, R., Ye, Y., Li, Z. and He, X. (2017). DeepFM: a
    factorization-machine based neural network for CTR prediction. IJCAI.

    Examples
    --------
    >>> import torch
    >>> from skdeepfm import DeepFMNetwork
    >>> net = DeepFMNetwork([10, 2, 5, 20, 3], embedding_dim=8, hidden_layer_sizes=(32, 16))
    >>> x = torch.tensor([[2, 1, 3, 10, 1], [7, 0, 4, 3, 0]])
    >>> net.eval()(x).shape
    torch.Size([2, 1])
    """

    #: Networks pickled before ``fm_scale`` existed computed the plain FM term.
    fm_scale = 1.0

    def __init__(
        self,
        field_dims,
        embedding_dim=10,
        hidden_layer_sizes=(400, 400, 400),
        dropout=0.2,
        batch_norm=True,
        n_outputs=1,
        *,
        bag_mode="mean",
        init_std=0.01,
        fm_scale=1.0,
        generator=None,
        device="cpu",
    ):
        super().__init__()
        field_dims = [int(d) for d in field_dims]
        if not field_dims or min(field_dims) < 1:
            raise ValueError(f"field_dims must be a non-empty list of positive ints; got {field_dims}.")
        self.field_dims = field_dims
        self.hidden_layer_sizes = tuple(int(size) for size in hidden_layer_sizes)
        self.dropout = float(dropout)
        self.batch_norm = bool(batch_norm)
        self.embedding_dim = int(embedding_dim)
        self.n_outputs = int(n_outputs)
        self.init_std = float(init_std)
        self.fm_scale = float(fm_scale)
        if bag_mode not in ("mean", "sum", "max"):
            raise ValueError(f"bag_mode must be 'mean', 'sum' or 'max'; got {bag_mode!r}.")
        self.bag_mode = bag_mode
        n_rows = sum(field_dims)
        n_fields = len(field_dims)
        # Built on the meta device, then initialised from `generator`: building
        # on a real device would draw from (and change) torch's global RNG.
        with torch.device("meta"):
            self.embedding = nn.Embedding(n_rows, self.embedding_dim)
            self.linear = nn.Embedding(n_rows, self.n_outputs)
            self.bias = nn.Parameter(torch.empty(self.n_outputs))
            self.dnn = nn.ModuleList()
            width = n_fields * self.embedding_dim
            for size in hidden_layer_sizes:
                self.dnn.append(nn.Linear(width, int(size)))
                if batch_norm:
                    self.dnn.append(nn.BatchNorm1d(int(size)))
                self.dnn.append(nn.ReLU())
                self.dnn.append(GeneratorDropout(dropout))
                width = int(size)
            self.dnn_output = nn.Linear(width, self.n_outputs)
            self.fm_projection = (
                nn.Linear(self.embedding_dim, self.n_outputs, bias=False) if self.n_outputs > 1 else None
            )
        self.to_empty(device="cpu")
        offsets = torch.tensor([0, *field_dims[:-1]], dtype=torch.int64).cumsum(0)
        self.register_buffer("offsets", offsets)
        # logits * logit_scale + logit_shift: the identity until an estimator
        # calibrates the trained network on its validation rows.
        self.register_buffer("logit_scale", torch.ones(self.n_outputs))
        self.register_buffer("logit_shift", torch.zeros(self.n_outputs))
        self.reset_parameters(generator)
        self.to(device)

    def train(self, mode=True):
        """Set training mode; also forgets the cached float64 copies of the weights (and their folding).

        Examples
        --------
        >>> from skdeepfm import DeepFMNetwork
        >>> net = DeepFMNetwork([10, 5], embedding_dim=4, hidden_layer_sizes=(8,))
        >>> net.train().training, net.eval().training
        (True, False)
        """
        # Training changes the weights, and not every in-place kernel (fused
        # optimisers) moves the version counters that _cast checks.
        with _CASTS_LOCK:
            for param in self.parameters():
                _CASTS.pop(id(param), None)
            _FOLDED.pop(self, None)
        return super().train(mode)

    def get_config(self):
        """The constructor arguments that rebuild this architecture.

        Returns
        -------
        config : dict
            Plain Python values (lists, ints, floats, bools, strings):
            ``DeepFMNetwork(**config)`` has the same shapes as this network.

        Examples
        --------
        >>> from skdeepfm import DeepFMNetwork
        >>> net = DeepFMNetwork([10, 5], embedding_dim=4, hidden_layer_sizes=(8,))
        >>> config = net.get_config()
        >>> config["field_dims"], config["hidden_layer_sizes"]
        ([10, 5], [8])
        >>> DeepFMNetwork(**config).embedding.weight.shape
        torch.Size([15, 4])
        """
        return {
            "field_dims": list(self.field_dims),
            "embedding_dim": self.embedding_dim,
            "hidden_layer_sizes": list(self.hidden_layer_sizes),
            "dropout": self.dropout,
            "batch_norm": self.batch_norm,
            "n_outputs": self.n_outputs,
            "bag_mode": self.bag_mode,
            "init_std": self.init_std,
            "fm_scale": self.fm_scale,
        }

    @torch.no_grad()
    def reset_parameters(self, generator=None):
        """Draw fresh initial weights from ``generator`` (a CPU generator).

        Embeddings ~ N(0, ``init_std``), first-order weights and bias zero,
        dense layers as PyTorch's default (Kaiming-uniform) except the DNN
        output layer's bias, zero. The rows of the
        reserved unknown code are zero.

        Examples
        --------
        >>> import torch
        >>> from skdeepfm import DeepFMNetwork
        >>> net = DeepFMNetwork([10, 5], embedding_dim=4, hidden_layer_sizes=(8,))
        >>> net.reset_parameters(torch.Generator().manual_seed(0))
        >>> first = net.embedding.weight.detach().clone()
        >>> net.reset_parameters(torch.Generator().manual_seed(0))
        >>> torch.equal(first, net.embedding.weight)
        True
        """
        nn.init.normal_(self.embedding.weight, 0.0, self.init_std, generator=generator)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.bias)
        self.embedding.weight[self.offsets + UNKNOWN_INDEX] = 0.0
        linears = [m for m in self.dnn if isinstance(m, nn.Linear)] + [self.dnn_output]
        if self.fm_projection is not None:
            linears.append(self.fm_projection)
        for layer in linears:
            nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=generator)
            if layer.bias is not None:
                bound = 1.0 / math.sqrt(layer.in_features)
                nn.init.uniform_(layer.bias, -bound, bound, generator=generator)
        # The global bias carries the intercept (the estimators start it at
        # the data's log-odds): the DNN's output layer adds none at first.
        nn.init.zeros_(self.dnn_output.bias)
        for module in self.dnn:
            if isinstance(module, nn.BatchNorm1d):
                module.reset_parameters()

    def table_rows(self, codes, bags=()):
        """The table rows that encoded rows look up.

        Parameters
        ----------
        codes, bags
            As in :meth:`forward`.

        Returns
        -------
        rows : torch.Tensor of shape (n_samples, n_fields)
            ``codes`` shifted into each field's rows.
        bag_rows : list of (int, torch.Tensor, torch.Tensor)
            ``bags`` with the elements' codes shifted likewise.

        Examples
        --------
        >>> import torch
        >>> from skdeepfm import DeepFMNetwork
        >>> net = DeepFMNetwork([10, 5], embedding_dim=4, hidden_layer_sizes=(8,))
        >>> codes = torch.tensor([[3, 1], [7, 4]])
        >>> rows, bag_rows = net.table_rows(codes)
        >>> rows
        tensor([[ 3, 11],
                [ 7, 14]])
        """
        rows = codes + self.offsets
        bag_rows = [(field, elements + self.offsets[field], starts) for field, elements, starts in bags]
        return rows, bag_rows

    def _pool(self, weight, rows, bag_rows):
        """(n_samples, n_fields, width): each field's row of ``weight``, pooled for bags."""
        n_samples, n_fields = rows.shape
        # index_select's backward is a dense index_add, much cheaper on CPU
        # than nn.Embedding's backward.
        out = weight.index_select(0, rows.reshape(-1)).view(n_samples, n_fields, -1)
        if not bag_rows:
            return out
        fields = list(out.unbind(1))
        for field, element_rows, starts in bag_rows:
            # Pooling with offsets (bag_mode): no padding to the longest list.
            fields[field] = F.embedding_bag(element_rows, weight, starts, mode=self.bag_mode)
        return torch.stack(fields, 1)

    def field_vectors(self, codes, values=None, bags=(), *, with_first_order=False):
        """Each field's embedding vector for encoded rows.

        Parameters
        ----------
        codes, values, bags
            As in :meth:`forward`.
        with_first_order : bool, default=False
            Also return each field's first-order weights.

        Returns
        -------
        vectors : torch.Tensor of shape (n_samples, n_fields, embedding_dim)
            The vectors the FM term multiplies pairwise (pooled for
            multi-valued fields, times ``values`` when given).
        first_order : torch.Tensor of shape (n_samples, n_fields, n_outputs)
            Only with ``with_first_order``.

        Examples
        --------
        >>> import torch
        >>> from skdeepfm import DeepFMNetwork
        >>> net = DeepFMNetwork([10, 5], embedding_dim=4, hidden_layer_sizes=(8,))
        >>> codes = torch.tensor([[3, 1], [7, 4]])
        >>> vectors, first_order = net.field_vectors(codes, with_first_order=True)
        >>> vectors.shape, first_order.shape
        (torch.Size([2, 2, 4]), torch.Size([2, 2, 1]))
        """
        rows, bag_rows = self.table_rows(codes, bags)
        emb = self._pool(self.embedding.weight, rows, bag_rows)
        first_order = self._pool(self.linear.weight, rows, bag_rows)
        if values is not None:
            values = values.to(emb.dtype).unsqueeze(-1)
            emb, first_order = emb * values, first_order * values
        return (emb, first_order) if with_first_order else emb

    def forward(
        self, codes, values=None, bags=(), generator=None, *, dtype=None, table=None, dnn_gradient_scale=1.0
    ):
        """Logits of encoded rows.

        Parameters
        ----------
        codes : torch.Tensor of shape (n_samples, n_fields), integer
            Code of each field, in ``[0, field_dims[f])``.
        values : torch.Tensor of shape (n_samples, n_fields) or None, default=None
            Multiplier of each field's vector (and first-order weight): the
            scaled value of a numeric field, 1 elsewhere. None: all ones.
        bags : sequence of (int, torch.Tensor, torch.Tensor), default=()
            For each multi-valued field ``f``: ``(f, elements, starts)``, the
            codes of all its elements, row after row, and the position in
            ``elements`` where each row starts. The field's vector pools its
            elements' vectors (``bag_mode``; zero for a row without elements);
            ``codes[:, f]`` is ignored.
        generator : torch.Generator or None, default=None
            Source of the dropout masks in training mode, on the device of
            ``codes``; None uses torch's global generator.
        dtype : torch.dtype or None, default=None
            Precision of the computation after the embedding lookup; None
            for the parameters' own (float32). float64 makes a row's logits
            independent of the other rows in the batch: float32 matrix
            products round differently for different batch shapes.
        table : torch.Tensor of shape (n_rows, embedding_dim + n_outputs) or None, default=None
            Embedding and first-order weights side by side, to look up
            instead of the network's tables: ``codes`` and the bags'
            elements are then rows of ``table`` (no field offsets). The
            training loop passes the rows a batch uses, gathered into a
            small tensor whose gradient it applies to the tables.
        dnn_gradient_scale : float, default=1.0
            Multiplier of the gradient that the DNN passes back to the
            embeddings; the logits do not change. The estimators train with
            a small multiplier (their ``dnn_gradient_scale`` parameter): with
            BatchNorm the DNN is indifferent to the embeddings' scale, so its
            gradient grows as they shrink and, at their small initial scale,
            drowns the FM term's.

        Returns
        -------
        logits : torch.Tensor of shape (n_samples, n_outputs)

        Examples
        --------
        >>> import torch
        >>> from skdeepfm import DeepFMNetwork
        >>> net = DeepFMNetwork([10, 5], embedding_dim=4, hidden_layer_sizes=(8,))
        >>> codes = torch.tensor([[3, 1], [7, 4]])
        >>> net.eval()(codes).shape
        torch.Size([2, 1])
        >>> net(codes, dtype=torch.float64).dtype
        torch.float64
        """
        if table is None:
            emb, first_order = self.field_vectors(codes, bags=bags, with_first_order=True)
        else:
            pooled = self._pool(table, codes, bags)
            emb, first_order = pooled.split([self.embedding_dim, self.n_outputs], dim=2)
        logits = self._head(emb, first_order, values, generator, dtype, dnn_gradient_scale)
        scale, shift = self.logit_scale, self.logit_shift
        if scale.dtype != logits.dtype:
            # Converted once (their in-place changes move the version counters
            # that _cast checks): two copies cost a tenth of a one-row prediction.
            scale, shift = _cast(scale, logits.dtype), _cast(shift, logits.dtype)
        return logits * scale + shift

    @torch.no_grad()
    def set_logit_calibration(self, scale=None, shift=None):
        """Set the affine map applied to the logits; no arguments restore the identity.

        Parameters
        ----------
        scale : array-like of shape (n_outputs,) or None, default=None
            Positive multiplier of each logit; None for ones.
        shift : array-like of shape (n_outputs,) or None, default=None
            Added to each scaled logit; None for zeros.

        Examples
        --------
        >>> import torch
        >>> from skdeepfm import DeepFMNetwork
        >>> net = DeepFMNetwork([10, 5], embedding_dim=4, hidden_layer_sizes=(8,)).eval()
        >>> codes = torch.tensor([[3, 1], [7, 4]])
        >>> raw = net(codes)
        >>> net.set_logit_calibration([2.0], [0.5])
        >>> torch.allclose(net(codes), 2.0 * raw + 0.5)
        True
        >>> net.set_logit_calibration()
        >>> torch.equal(net(codes), raw)
        True
        """
        for buffer, value, default in ((self.logit_scale, scale, 1.0), (self.logit_shift, shift, 0.0)):
            if value is None:
                buffer.fill_(default)
            else:
                buffer.copy_(torch.as_tensor(value, dtype=buffer.dtype).reshape(buffer.shape))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # Files written before the calibration existed hold no map: identity.
        for name, default in (("logit_scale", torch.ones), ("logit_shift", torch.zeros)):
            state_dict.setdefault(prefix + name, default(self.n_outputs))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def __setstate__(self, state):
        super().__setstate__(state)
        # Pickles from before the calibration existed: identity.
        for name, default in (("logit_scale", torch.ones), ("logit_shift", torch.zeros)):
            if name not in self._buffers:
                device = self.offsets.device
                self.register_buffer(name, default(self.n_outputs, device=device))

    def _head(self, emb, first_order, values, generator, dtype, dnn_gradient_scale=1.0):
        """Logits from each field's vector and first-order weights."""
        n_samples = emb.shape[0]
        bias = self.bias
        if dtype is not None:
            emb, first_order, bias = emb.to(dtype), first_order.to(dtype), _cast(bias, dtype)
        if values is not None:
            values = values.to(emb.dtype).unsqueeze(-1)
            emb, first_order = emb * values, first_order * values
        first_order = first_order.sum(1)

        # Sum over pairs i < j of <e_i, e_j>, per dimension:
        # 0.5 * ((sum_f e_f) ** 2 - sum_f e_f ** 2).
        summed = emb.sum(1)
        interactions = 0.5 * (summed * summed - (emb * emb).sum(1))
        if self.fm_scale != 1.0:
            interactions = interactions * self.fm_scale
        if self.fm_projection is None:
            second_order = interactions.sum(1, keepdim=True)
        else:
            second_order = _apply(self.fm_projection, interactions, generator, dtype)

        hidden = emb.reshape(n_samples, -1)
        folded = None
        if dtype is not None and not self.training and not torch.is_grad_enabled():
            folded = _folded_dnn(self, dtype, hidden.device)
        if folded is not None:
            # Inference: each BatchNorm folded into the Linear before it.
            *layers, (weight, out_bias) = folded
            for layer_weight, layer_bias in layers:
                hidden = torch.addmm(layer_bias, hidden, layer_weight.t()).relu_()
            return first_order + bias + second_order + torch.addmm(out_bias, hidden, weight.t())
        if dnn_gradient_scale != 1.0 and hidden.requires_grad:
            hidden = _ScaleGradient.apply(hidden, float(dnn_gradient_scale))
        device_type = hidden.device.type
        for index, layer in enumerate(self.dnn):
            if index == 0 and _autocast_enabled(device_type):
                # The layer over the embeddings stays in float32 under
                # autocast: it passes the embeddings' gradients, which
                # bfloat16 rounding cost test AUC on frappe.
                with torch.autocast(device_type, enabled=False):
                    hidden = layer(hidden.float())
                continue
            hidden = _apply(layer, hidden, generator, dtype)
        return first_order + bias + second_order + _apply(self.dnn_output, hidden, generator, dtype)


class _ScaleGradient(torch.autograd.Function):
    """Identity forward; the backward multiplies the gradient by ``scale``."""

    @staticmethod
    def forward(ctx, x, scale):
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.scale, None


def _autocast_enabled(device_type):
    try:
        return torch.is_autocast_enabled(device_type)
    except TypeError:  # torch < 2.4 takes no device type
        if device_type == "cpu":
            return torch.is_autocast_cpu_enabled()
        return torch.is_autocast_enabled()


def _apply(layer, x, generator, dtype=None):
    """Call ``layer`` on ``x``; with ``dtype``, in that dtype when its parameters differ.

    Without ``dtype``, mixed dtypes are left to autocast.
    """
    if isinstance(layer, GeneratorDropout):
        return layer(x, generator)
    if dtype is None:
        return layer(x)
    if isinstance(layer, nn.Linear) and layer.weight.dtype != x.dtype:
        bias = None if layer.bias is None else _cast(layer.bias, x.dtype)
        return F.linear(x, _cast(layer.weight, x.dtype), bias)
    if isinstance(layer, nn.BatchNorm1d) and layer.running_mean.dtype != x.dtype:
        if layer.training:
            raise ValueError("A dtype other than the parameters' is for inference (eval mode) only.")
        return F.batch_norm(
            x,
            # Not cached: BatchNorm updates its running statistics in place
            # without moving their version counters.
            layer.running_mean.to(x.dtype),
            layer.running_var.to(x.dtype),
            None if layer.weight is None else _cast(layer.weight, x.dtype),
            None if layer.bias is None else _cast(layer.bias, x.dtype),
            training=False,
            eps=layer.eps,
        )
    return layer(x)


#: Each network's DNN with its BatchNorm layers folded in, for inference.
_FOLDED = weakref.WeakKeyDictionary()


def _folded_dnn(network, dtype, device):
    """``[(weight, bias), ...]``: the DNN's Linear layers, BatchNorm folded in, then the output layer.

    For inference in ``dtype`` (eval mode): a hidden layer is
    ``relu(hidden @ weight.T + bias)``. Folding is computed in float64 and
    kept while no weight, bias or running statistic changes (their version
    counters and data pointers; ``DeepFMNetwork.train`` drops it). None when
    the DNN holds a layer of another kind than the network builds.
    """
    modules = [*network.dnn, network.dnn_output]
    # The modules' own tensors (the layers have no submodules): iterating
    # parameters() and buffers() cost 60 µs per call, more than a one-row DNN.
    tensors = [t for module in modules for own in (module._parameters, module._buffers) for t in own.values()]
    key = (dtype, device, tuple((t._version, t.data_ptr()) for t in tensors if t is not None))
    with _CASTS_LOCK:
        cached = _FOLDED.get(network)
    if cached is not None and cached[0] == key:
        return cached[1]
    layers = []
    # Not inference tensors: the cache also serves calls outside inference mode.
    with torch.inference_mode(False), torch.no_grad():
        for module in modules:
            if isinstance(module, nn.Linear):
                bias = module.bias if module.bias is not None else torch.zeros(module.out_features)
                layers.append([module.weight.to(device, torch.float64), bias.to(device, torch.float64)])
            elif isinstance(module, nn.BatchNorm1d) and layers and module.track_running_stats:
                scale = 1 / (module.running_var.to(device, torch.float64) + module.eps).sqrt()
                shift = torch.zeros_like(scale)
                if module.affine:
                    scale = scale * module.weight.to(device, torch.float64)
                    shift = module.bias.to(device, torch.float64)
                weight, bias = layers[-1]
                mean = module.running_mean.to(device, torch.float64)
                layers[-1] = [weight * scale[:, None], (bias - mean) * scale + shift]
            elif not isinstance(module, (nn.ReLU, nn.Dropout)):
                return None
    folded = [(weight.to(dtype).contiguous(), bias.to(dtype)) for weight, bias in layers]
    with _CASTS_LOCK:
        _FOLDED[network] = (key, folded)
    return folded


#: Copies of parameters in another dtype, by ``id`` of the parameter (with a
#: weak reference to check it is the same one): converting the DNN's weights
#: took most of a one-row prediction's time.
_CASTS = {}
_CASTS_LOCK = threading.Lock()


def _cast(tensor, dtype):
    """``tensor`` (a parameter) in ``dtype``, converted once while it stays unchanged.

    Entries are dropped by ``DeepFMNetwork.train``; buffers changed in place
    by kernels (BatchNorm's running statistics) must not come here.
    """
    # The version counter moves with every in-place change (optimiser steps,
    # load_state_dict); the data pointer with a `.data` assignment.
    key = (tensor._version, tensor.data_ptr(), dtype, tensor.device)
    with _CASTS_LOCK:
        cached = _CASTS.get(id(tensor))
    if cached is not None and cached[0]() is tensor and cached[1] == key:
        return cached[2]
    # Not an inference tensor: the cache also serves calls that record gradients.
    with torch.inference_mode(False):
        converted = tensor.detach().to(dtype)
    ident = id(tensor)
    with _CASTS_LOCK:
        _CASTS[ident] = (weakref.ref(tensor, lambda _: _CASTS.pop(ident, None)), key, converted)
    return converted
