"""Checks made before any job runs, without torch: weights files and the CUDA driver.

Config validation runs when the Snakefile is parsed, in the main Snakemake process and in
every job, so nothing here imports torch: a config error is reported in a second, not after
the first job has started. The weights reader is also the first step of
``models.load_weights``, so a job refuses a file with the same line that validation would.
"""

from __future__ import annotations

import _compat_pickle
import ctypes
import os
import pickle
import re
import stat
import zipfile
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any


class WeightsFileError(ValueError):
    """A weights file that is not a plain state_dict; one line, without the file's path."""


SAVE_HINT = "save model.state_dict() with torch.save"
# Checkpoints that wrap the state_dict, as load_weights unwraps them (in this order).
WRAPPER_KEYS = ("state_dict", "model")
# torch.serialization's legacy (non-zip) format starts with these two pickled integers.
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001
# A state_dict's pickle holds names and shapes only (tens of kB even for ResNet-50); the
# limit keeps a zip bomb from being inflated at parse time.
_MAX_PICKLE_BYTES = 256 * 2**20


# ----------------------------------------------------------------------- weights files


@dataclass(frozen=True)
class TensorStub:
    """What the reader makes of a pickled tensor: its shape; the data is never read."""

    shape: tuple[int, ...]


@dataclass(frozen=True)
class _Marker:
    """An inert stand-in for a torch global (a storage class, a dtype)."""

    name: str


def _rebuild_tensor(storage: Any, offset: Any, size: Any, *rest: Any) -> TensorStub:
    """Stands in for torch._utils._rebuild_tensor(_v2, _v3): the shape is the third argument."""
    if not isinstance(size, tuple) or not all(type(n) is int and n >= 0 for n in size):
        raise WeightsFileError(f"a damaged tensor record (size {size!r}); {SAVE_HINT}")
    return TensorStub(size)


def _rebuild_parameter(data: Any, *rest: Any) -> Any:
    """Stands in for torch._utils._rebuild_parameter(_with_state): the tensor itself."""
    return data


def _encode(text: str, encoding: str = "latin1") -> bytes:
    """Stands in for _codecs.encode, which protocol-2 pickles use for bytes (latin-1 only)."""
    if encoding not in ("latin1", "latin-1"):
        raise WeightsFileError(f"a pickle that encodes bytes as {encoding!r}; {SAVE_HINT}")
    return text.encode("latin1")


# The globals a torch.save'd state_dict (or a checkpoint dict around one) may reference: a
# subset of torch.load(weights_only=True)'s allowlist, each replaced by an inert stand-in.
# Anything else (a module class, an arbitrary callable) is refused by name.
_ALLOWED_GLOBALS: dict[str, Any] = {
    "collections.OrderedDict": OrderedDict,
    "collections.Counter": Counter,
    "torch._utils._rebuild_tensor": _rebuild_tensor,
    "torch._utils._rebuild_tensor_v2": _rebuild_tensor,
    "torch._utils._rebuild_tensor_v3": _rebuild_tensor,
    "torch._utils._rebuild_parameter": _rebuild_parameter,
    "torch._utils._rebuild_parameter_with_state": _rebuild_parameter,
    "torch.Size": tuple,
    "torch.device": str,
    "_codecs.encode": _encode,
    "builtins.set": set,
    "builtins.bytearray": bytearray,
    "builtins.complex": complex,
}
# torch.FloatStorage and the like (torch.storage.UntypedStorage): the storage of a tensor.
_STORAGE_MODULES = ("torch", "torch.storage", "torch.cuda")
# torch.float16, torch.uint16, ...: dtypes, which _rebuild_tensor_v3 records name.
_DTYPE = re.compile(
    r"(b?float|q?u?int|complex|bits)(\d\w*)?|bool|half|double|long|short|cfloat|cdouble"
)


class _StateDictUnpickler(pickle.Unpickler):
    """Unpickles a torch.save'd state_dict into dicts of :class:`TensorStub`.

    Python's "restricting globals" recipe: ``find_class`` hands out only the inert
    stand-ins above, so nothing in the file runs; ``persistent_load`` answers torch's
    storage references with a marker, so no tensor data is read.
    """

    def find_class(self, module: str, name: str) -> Any:
        # protocol-2 pickles name Python 3 globals by their Python 2 names (__builtin__.set)
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        full = f"{module}.{name}"
        if full in _ALLOWED_GLOBALS:
            return _ALLOWED_GLOBALS[full]
        if module in _STORAGE_MODULES and name.endswith("Storage"):
            return _Marker(full)
        if module == "torch" and _DTYPE.fullmatch(name):
            return _Marker(full)
        raise WeightsFileError(f"a pickled object ({full}), not a plain state_dict; {SAVE_HINT}")

    def persistent_load(self, pid: Any) -> Any:
        kind = pid[0] if isinstance(pid, tuple) and pid else None
        if kind in ("storage", b"storage"):
            return _Marker("storage")
        raise WeightsFileError(f"a pickle with a foreign persistent id {kind!r}; {SAVE_HINT}")


def _unpickle(handle: IO[bytes]) -> Any:
    """One pickle from ``handle`` through the restricted unpickler; damage is one line."""
    try:
        return _StateDictUnpickler(handle, encoding="utf-8").load()
    except WeightsFileError:
        raise
    except Exception as error:  # truncated or corrupt data fails in many ways
        raise WeightsFileError(
            f"a damaged pickle ({type(error).__name__}: {str(error).splitlines()[0][:80]})"
        ) from None


def _kind(value: Any) -> str:
    """A value's kind for messages: 'a tensor', 'a list', 'an int'."""
    name = "tensor" if isinstance(value, TensorStub) else type(value).__name__
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"


def unwrap_state_dict(obj: Any) -> dict[str, Any]:
    """The state_dict inside a loaded checkpoint, as ``models.load_weights`` uses it.

    ``{"state_dict": ...}`` and ``{"model": ...}`` wrappers (training checkpoints) are
    removed and the ``module.`` prefix of DataParallel's keys is stripped. Works on
    torch.load's result and on :func:`read_state_dict_shapes`'s stubs alike.

    Raises:
        WeightsFileError: ``obj`` holds no mapping of tensor names.
    """
    if isinstance(obj, dict):
        for key in WRAPPER_KEYS:
            if isinstance(obj.get(key), dict):
                obj = obj[key]
    if not isinstance(obj, dict):
        raise WeightsFileError(f"holds {_kind(obj)}, not a state_dict; {SAVE_HINT}")
    state = {}
    for key, value in obj.items():
        if not isinstance(key, str):
            raise WeightsFileError(f"a dict keyed by {_kind(key)}, not a state_dict; {SAVE_HINT}")
        state[key.removeprefix("module.")] = value
    return state


def _zip_pickle(handle: IO[bytes]) -> Any:
    """The data.pkl of torch.save's zip format (``<archive>/data.pkl`` beside the tensors)."""
    try:
        with zipfile.ZipFile(handle) as archive:
            names = archive.namelist()
            prefix = names[0].split("/", 1)[0] if names else ""
            if f"{prefix}/constants.pkl" in names:
                raise WeightsFileError(
                    f"a TorchScript archive (torch.jit.save), not a plain state_dict; {SAVE_HINT}"
                )
            if f"{prefix}/data.pkl" not in names:
                raise WeightsFileError(
                    f"a zip archive without data.pkl, not written by torch.save; {SAVE_HINT}"
                )
            info = archive.getinfo(f"{prefix}/data.pkl")
            if info.file_size > _MAX_PICKLE_BYTES:
                raise WeightsFileError(
                    f"a pickle of {info.file_size // 2**20} MB, too large for a state_dict; "
                    f"{SAVE_HINT}"
                )
            with archive.open(info) as data:
                return _unpickle(data)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as error:
        raise WeightsFileError(f"a damaged zip archive ({error})") from None


def _legacy_pickle(handle: IO[bytes]) -> Any:
    """The object of torch's legacy format: magic number, protocol, system info, object."""
    if _unpickle(handle) != _LEGACY_MAGIC or _unpickle(handle) != _LEGACY_PROTOCOL:
        raise _not_torch_save()
    _unpickle(handle)  # system info: byte order and type sizes
    return _unpickle(handle)


def _not_torch_save() -> WeightsFileError:
    return WeightsFileError(
        "not a file written by torch.save (neither its zip archive nor its legacy format); "
        + SAVE_HINT
    )


def read_state_dict_shapes(path: str | os.PathLike[str]) -> dict[str, tuple[int, ...]]:
    """``{tensor name: shape}`` of a torch.save'd state_dict, read without torch.

    Reads only the pickle (names and shapes), never the tensor data, so it is quick even
    for large files. Accepts what ``models.load_weights`` accepts: torch.save's zip format
    or its legacy format, a bare state_dict or one wrapped in ``{"state_dict": ...}`` /
    ``{"model": ...}``, keys with a ``module.`` prefix (stripped here).

    Raises:
        WeightsFileError: the file is missing, not a regular file, not written by
            torch.save, a pickled object other than a state_dict (a whole model), or holds
            something besides tensors; one line without the path.
    """
    try:
        info = os.stat(path)
    except FileNotFoundError:
        where = "" if os.path.isabs(path) else f" (relative to {os.getcwd()})"
        raise WeightsFileError(f"does not exist{where}") from None
    except OSError as error:
        raise WeightsFileError(f"cannot be read ({error.strerror})") from None
    if stat.S_ISDIR(info.st_mode):
        raise WeightsFileError("is a directory, not a state_dict file")
    if not stat.S_ISREG(info.st_mode):
        raise WeightsFileError("is not a regular file")
    try:
        with open(path, "rb") as handle:
            head = handle.read(4)
            handle.seek(0)
            if head == b"PK\x03\x04":  # torch.load's own test for the zip format
                obj = _zip_pickle(handle)
            elif head[:1] == b"\x80":  # a pickle's PROTO opcode: the legacy format
                obj = _legacy_pickle(handle)
            else:
                raise _not_torch_save()
    except OSError as error:
        raise WeightsFileError(f"cannot be read ({error.strerror or error})") from None
    state = unwrap_state_dict(obj)
    if not state:
        raise WeightsFileError(f"holds an empty state_dict; {SAVE_HINT}")
    shapes = {}
    for key, value in state.items():
        if not isinstance(value, TensorStub):
            raise WeightsFileError(
                f"entry {key!r} is {_kind(value)}, not a tensor: not a plain state_dict; "
                + SAVE_HINT
            )
        shapes[key] = value.shape
    return shapes


# ----------------------------------------------------------------------- CUDA driver


@dataclass(frozen=True)
class CudaProbe:
    """What the CUDA driver of this machine reports.

    Attributes:
        devices: CUDA devices visible to a job started from here; None where this probe
            cannot tell (a ROCm machine, whose torch runs ``cuda`` devices through HIP).
        reason: why there are none, for the message.
    """

    devices: int | None
    reason: str = ""


_DRIVER_LIBRARIES = ("libcuda.so.1", "libcuda.so") if os.name == "posix" else ("nvcuda.dll",)
_ROCM_DEVICE = Path("/dev/kfd")
# Names of the driver's errors for a driver too old for cuGetErrorName.
_CUDA_ERRORS = {
    3: "CUDA_ERROR_NOT_INITIALIZED",
    35: "CUDA_ERROR_INSUFFICIENT_DRIVER",
    100: "CUDA_ERROR_NO_DEVICE",
    304: "CUDA_ERROR_OPERATING_SYSTEM",
    802: "CUDA_ERROR_SYSTEM_NOT_READY",
    803: "CUDA_ERROR_SYSTEM_DRIVER_MISMATCH",
    999: "CUDA_ERROR_UNKNOWN",
}


def _cuda_error_name(driver: Any, status: int) -> str:
    name = ctypes.c_char_p()
    try:
        if driver.cuGetErrorName(status, ctypes.byref(name)) == 0 and name.value:
            return name.value.decode()
    except (AttributeError, OSError):  # a fake or an old driver without the function
        pass
    return _CUDA_ERRORS.get(status, f"CUDA error {status}")


def driver_devices(driver: Any) -> CudaProbe:
    """Devices that a loaded CUDA driver library (``ctypes.CDLL``) reports.

    cuInit and cuDeviceGetCount, as torch.cuda.is_available() asks them; the driver
    honours CUDA_VISIBLE_DEVICES. cuInit creates no context, and Snakemake starts its jobs
    as new processes (fork and exec), so the driver's state here never reaches a job.
    """
    status = driver.cuInit(0)
    if status == 0:
        count = ctypes.c_int(0)
        status = driver.cuDeviceGetCount(ctypes.byref(count))
        if status == 0:
            return CudaProbe(count.value, "" if count.value else "the NVIDIA driver sees no GPU")
    reason = f"the NVIDIA driver reports {_cuda_error_name(driver, status)}"
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        reason += f" with CUDA_VISIBLE_DEVICES={visible!r}"
    return CudaProbe(0, reason)


def probe_cuda(
    libraries: tuple[str, ...] = _DRIVER_LIBRARIES,
    rocm_device: Path = _ROCM_DEVICE,
    load: Callable[[str], Any] = ctypes.CDLL,
) -> CudaProbe:
    """Ask the NVIDIA driver, through ctypes, how many CUDA devices this machine has."""
    for name in libraries:
        try:
            driver = load(name)
        except OSError:
            continue
        return driver_devices(driver)
    if rocm_device.exists():
        return CudaProbe(None, "an AMD ROCm machine")
    return CudaProbe(0, f"no NVIDIA driver: {libraries[0]} not found")


def cuda_device_problem(device: str, probe: Callable[[], CudaProbe] = probe_cuda) -> str | None:
    """Why jobs started on this machine cannot use ``device``, or None where they can.

    Only ``cuda`` and ``cuda:N`` are probed (``auto`` falls back to the CPU). Call it only
    where the jobs run on this machine: a cluster's login node may have no GPU while its
    nodes do.
    """
    if device != "cuda" and not device.startswith("cuda:"):
        return None
    found = probe()
    if found.devices is None:
        return None
    if found.devices == 0:
        return (
            f"{device!r}, but this machine has no CUDA device ({found.reason}) and the jobs "
            "run here; use 'auto' or 'cpu'"
        )
    index = int(device.partition(":")[2] or 0)
    if index >= found.devices:
        return (
            f"{device!r}, but this machine has {found.devices} CUDA device(s), "
            f"cuda:0 to cuda:{found.devices - 1}"
        )
    return None
