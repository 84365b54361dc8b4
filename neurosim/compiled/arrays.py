"""The array libraries the compiled kernel runs on: numpy, or PyTorch on a device.

:mod:`neurosim.compiled.bipartite` is written once against the few operations here
(products into a buffer or a new float32 array, in-place sigmoid, uniform and normal draws into a buffer,
comparison, softmax, empty buffers), and :class:`~neurosim.compiled.sampler.Chains` against
those and a few more (copy, log-sigmoid, log, a softmax group's draw, assignment casts); sums,
slices and in-place arithmetic are the operators both libraries share. :func:`backend` names the library, the device and the
dtype of the products, and gives the operations (:class:`NumpyOps`, :class:`TorchOps`).

**numpy** is today's calls, unchanged, so its results are bit for bit those of the
kernel before this layer. **torch** is imported only when asked for; its draws come from
a ``torch.Generator`` seeded by one integer drawn from the caller's numpy generator
(:meth:`Backend.generator`, called at every update by the trainers, so that a checkpoint
of the numpy generator resumes the torch draws too), so the same seed gives the same
numbers on the same backend, device and dtype, and other numbers than numpy's.

**Cast policy (dtype="bfloat16").** The weights stay float32 (master weights). Once per
update the kernel takes a bfloat16 copy of the weights (:meth:`TorchOps.lowered`); each
matrix product casts its other operand to bfloat16 (states 0/1 exactly, probabilities to
8 significant bits), multiplies with float32 accumulation inside the GEMM, and writes a
float32 result (the CPU GEMM rounds its output to bfloat16 first: PyTorch has no
float32-output bfloat16 product on the CPU). Everything else (biases, sigmoid, draws,
statistics, sums, the weight change's accumulation into the weights) is float32.
``dtype="float32"``: every operand float32.

>>> be = backend("numpy")
>>> x = np.zeros(2)
>>> be.ops.sigmoid_(x), be.asarray(x) is x, be.generator(rng := np.random.default_rng(0)) is rng
(array([0.5, 0.5]), True, True)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ParameterError
from ..numerics import categorical, log_sigmoid, one_of_n, sigmoid, softmax

__all__ = ["BACKENDS", "DTYPES", "Backend", "NumpyOps", "TorchOps", "backend", "ops_of", "import_torch"]

BACKENDS = ("numpy", "torch")
DTYPES = ("float32", "bfloat16")          # of the products; the weights are float32 (or the data's type on numpy)
BFLOAT16_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")   # /proc/cpuinfo: x86's two, ARM's feature
CPUINFO = "/proc/cpuinfo"


def import_torch():
    """``torch``, or a ParameterError naming the extra to install."""
    try:
        import torch
    except ImportError as exc:
        raise ParameterError(f"backend='torch' needs PyTorch ({exc}): pip install neurosim[torch]") from None
    return torch


class NumpyOps:
    """numpy: exactly the calls of the kernel before the layer (bit for bit)."""

    @staticmethod
    def empty(shape: tuple, like: np.ndarray) -> np.ndarray:
        return np.empty(shape, like.dtype)

    empty_like = staticmethod(np.empty_like)

    @staticmethod
    def matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        return a @ b if out is None else np.matmul(a, b, out=out)

    @staticmethod
    def dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return a @ b

    @staticmethod
    def sigmoid_(x: np.ndarray) -> np.ndarray:
        return sigmoid(x, out=x)

    softmax = staticmethod(softmax)

    @staticmethod
    def uniform(rng: np.random.Generator, out: np.ndarray) -> np.ndarray:
        return rng.random(dtype=out.dtype, out=out)

    @staticmethod
    def normal(rng: np.random.Generator, out: np.ndarray) -> np.ndarray:
        return rng.standard_normal(dtype=out.dtype, out=out)

    @staticmethod
    def less(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> np.ndarray:
        return np.less(a, b, out=out)

    @staticmethod
    def add(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> np.ndarray:
        return np.add(a, b, out=out)

    @staticmethod
    def c_contiguous(x: np.ndarray) -> bool:
        return x.flags.c_contiguous

    @staticmethod
    def lowered(x: np.ndarray | None) -> np.ndarray | None:
        return x

    @staticmethod
    def copy(x: np.ndarray) -> np.ndarray:
        return x.copy()

    log_sigmoid = staticmethod(log_sigmoid)
    log = staticmethod(np.log)
    one_of_n = staticmethod(one_of_n)
    categorical = staticmethod(categorical)

    @staticmethod
    def one_hot_(k: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Row ``i`` of ``out`` set to unit ``k[i]`` of a one-hot group, in place."""
        out[:] = 0
        np.put_along_axis(out, k.reshape(-1, 1), 1, axis=1)
        return out

    @staticmethod
    def assignable(x: np.ndarray, like: np.ndarray) -> np.ndarray:
        """``x`` to assign into ``like``'s elements: as it is (numpy casts on assignment)."""
        return x


class TorchOps:
    """PyTorch tensors on any device; products in ``products`` (see the cast policy)."""

    def __init__(self, torch: Any, products: Any) -> None:
        self.torch, self.products = torch, products

    def empty(self, shape: tuple, like: Any) -> Any:
        return self.torch.empty(shape, dtype=like.dtype, device=like.device)

    def empty_like(self, x: Any) -> Any:
        return self.torch.empty_like(x)                 # keeps the memory order of x

    def matmul(self, a: Any, b: Any, out: Any | None = None) -> Any:
        """``a @ b`` with both cast to the product dtype (no-op if already), into ``out``."""
        a, b = a.to(self.products), b.to(self.products)
        if out is None:
            return a @ b
        if out.dtype == self.products:
            return self.torch.matmul(a, b, out=out)
        return out.copy_(a @ b)

    def dot(self, a: Any, b: Any) -> Any:
        """``a @ b`` in the product dtype, as a new float32 array (the master dtype)."""
        return (a.to(self.products) @ b.to(self.products)).to(self.torch.float32)

    @staticmethod
    def sigmoid_(x: Any) -> Any:
        return x.sigmoid_()

    @staticmethod
    def softmax(x: Any) -> Any:
        return x.softmax(-1)

    @staticmethod
    def uniform(rng: Any, out: Any) -> Any:
        return out.uniform_(generator=rng)

    @staticmethod
    def normal(rng: Any, out: Any) -> Any:
        return out.normal_(generator=rng)

    def less(self, a: Any, b: Any, out: Any) -> Any:
        return self.torch.lt(a, b, out=out)

    def add(self, a: Any, b: Any, out: Any) -> Any:
        return self.torch.add(a, b, out=out)

    @staticmethod
    def c_contiguous(x: Any) -> bool:
        return x.is_contiguous()

    def lowered(self, x: Any | None) -> Any | None:
        return None if x is None else x.to(self.products)

    @staticmethod
    def copy(x: Any) -> Any:
        return x.clone()

    def log_sigmoid(self, x: Any) -> Any:
        return self.torch.nn.functional.logsigmoid(x)

    @staticmethod
    def log(x: Any) -> Any:
        return x.log()

    def one_of_n(self, x: Any, u: Any) -> Any:
        """:func:`neurosim.numerics.one_of_n` on tensors: :meth:`categorical` of the softmax."""
        return self.categorical(x.softmax(-1), u)

    @staticmethod
    def categorical(p: Any, u: Any) -> Any:
        """:func:`neurosim.numerics.categorical` on tensors: the cumulative sum inverted at ``u``."""
        cdf = p.cumsum(-1)
        return (cdf < u.reshape(-1, 1) * cdf[:, -1:]).sum(-1).clamp_(max=p.shape[-1] - 1)

    @staticmethod
    def one_hot_(k: Any, out: Any) -> Any:
        """Row ``i`` of ``out`` set to unit ``k[i]`` of a one-hot group, in place."""
        return out.zero_().scatter_(1, k.reshape(-1, 1), 1.0)

    @staticmethod
    def assignable(x: Any, like: Any) -> Any:
        """``x`` in ``like``'s dtype (torch's indexed assignment does not cast)."""
        return x.to(like.dtype)


NUMPY = NumpyOps()


def ops_of(x: Any) -> NumpyOps | TorchOps:
    """The operations of ``x``'s library (products in ``x``'s own dtype)."""
    if isinstance(x, np.ndarray):
        return NUMPY
    torch = import_torch()
    return TorchOps(torch, x.dtype)


@dataclass(frozen=True)
class Backend:
    """A validated choice (:func:`backend`): library, device, product dtype, operations."""

    name: str
    device: str
    dtype: str
    ops: NumpyOps | TorchOps = field(compare=False, repr=False)

    def asarray(self, x: np.ndarray | None) -> Any:
        """``x`` on the device (no copy on the CPU: a tensor sharing numpy's memory)."""
        if x is None or self.name == "numpy":
            return x
        return self.ops.torch.as_tensor(x, device=self.device)

    def to_numpy(self, x: Any) -> np.ndarray | None:
        return x if x is None or isinstance(x, np.ndarray) else x.cpu().numpy()

    @property
    def shares_memory(self) -> bool:
        """True when :meth:`asarray` is a view: changes reach the numpy arrays."""
        return self.name == "numpy" or self.device == "cpu"

    def generator(self, rng: np.random.Generator) -> Any:
        """The backend's generator: numpy's ``rng`` itself; torch's, on the device, seeded
        by one integer drawn from ``rng``."""
        if self.name == "numpy":
            return rng
        seed = int(rng.integers(2 ** 63))
        return self.ops.torch.Generator(device=self.device).manual_seed(seed)


def backend(name: str = "numpy", device: str = "cpu", dtype: str = "float32") -> Backend:
    """A :class:`Backend`, or a ParameterError naming the bad value and the alternative:
    an unknown library or dtype, bfloat16 or another device on numpy, torch not installed
    (``pip install neurosim[torch]``), CUDA without a GPU ("no CUDA device; use
    --device cpu"), bfloat16 on a CPU without bfloat16 instructions (:func:`cpu_has_bfloat16`)."""
    if name not in BACKENDS:
        raise ParameterError(f"backend must be one of {', '.join(map(repr, BACKENDS))}, got {name!r}")
    if dtype not in DTYPES:
        raise ParameterError(f"dtype of the products must be one of {', '.join(map(repr, DTYPES))}, got {dtype!r}")
    if name == "numpy":
        if dtype != "float32":
            raise ParameterError(f"dtype={dtype!r} needs backend='torch' (numpy has no bfloat16 products); "
                                 "use backend='torch' or dtype float32")
        if device != "cpu":
            raise ParameterError(f"device={device!r} needs backend='torch'; numpy runs on the cpu")
        return Backend(name, device, dtype, NUMPY)
    torch = import_torch()
    device = _torch_device(torch, device)
    if dtype == "bfloat16" and torch.device(device).type == "cpu" and cpu_has_bfloat16() is False:
        raise ParameterError(f"dtype='bfloat16' needs a CPU with bfloat16 instructions ({', '.join(BFLOAT16_FLAGS)} "
                             f"in {CPUINFO}); this one has none: use dtype float32, or a GPU (--device cuda)")
    return Backend(name, device, dtype, TorchOps(torch, getattr(torch, dtype)))


def cpu_has_bfloat16() -> bool | None:
    """Whether the CPU multiplies in bfloat16 natively (a flag of :data:`BFLOAT16_FLAGS` in
    ``/proc/cpuinfo``); None where that file cannot say (not Linux). Without them torch
    emulates bfloat16 products, several times slower than float32's."""
    try:
        text = Path(CPUINFO).read_text(errors="replace")
    except OSError:
        return None
    words = set(" ".join(line.partition(":")[2] for line in text.splitlines()
                         if line.startswith(("flags", "Features"))).split())
    return None if not words else bool(words.intersection(BFLOAT16_FLAGS))


def _torch_device(torch: Any, device: str) -> str:
    """``device`` checked: one torch knows, and a GPU present for ``cuda``."""
    try:
        kind = torch.device(device).type
    except (RuntimeError, TypeError):
        raise ParameterError(f"device must be 'cpu', 'cuda' or another torch device, got {device!r}") from None
    if kind == "cuda" and not torch.cuda.is_available():
        raise ParameterError("no CUDA device; use --device cpu")
    return str(device)
