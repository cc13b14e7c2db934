"""Building ``kernels.c`` into a shared library per pixel type, on first use, cached on disk.

One library per pixel type (``uint16`` runs build only the ``uint16`` one: about a second with
gcc at ``-O3``), named by a digest of everything that makes it: the source, the compiler and its
flags, the pixel type and the CPU (``-march=native`` code must not load on another CPU that shares
the cache folder, a cluster's home directory say). A library is written under a temporary name and
renamed, so processes building the same one at once (dask workers) never load half a file.

Where: ``$GEOMASK_CACHE_DIR``, else ``$XDG_CACHE_HOME/geomask``, else ``~/.cache/geomask``; a
folder that cannot be written falls back to the system's temporary folder.
"""

from __future__ import annotations

import functools
import hashlib
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from geomask.errors import KernelBuildError as BuildError

SOURCE = Path(__file__).with_name("kernels.c")

#: The C type and its unsigned twin (the output's bits) for each numpy pixel type.
CTYPES = {
    "uint8": ("uint8_t", "uint8_t"),
    "int8": ("int8_t", "uint8_t"),
    "uint16": ("uint16_t", "uint16_t"),
    "int16": ("int16_t", "uint16_t"),
    "uint32": ("uint32_t", "uint32_t"),
    "int32": ("int32_t", "uint32_t"),
    "float32": ("float", "uint32_t"),
    "float64": ("double", "uint64_t"),
}

# -ffp-contract=off: no fused multiply-add (it rounds once where the numba and scipy orders round
# twice); no -ffast-math (it reorders sums). -fno-math-errno lets rint() compile to one instruction.
_FLAGS = ["-O3", "-std=c11", "-ffp-contract=off", "-fno-math-errno", "-fPIC", "-shared"]


def compiler() -> list[str]:
    """The C compiler command: ``$CC``, else Python's own (sysconfig), else ``cc``/``gcc``/``clang``.

    Raises :class:`BuildError` when none is on the PATH."""
    candidates = []
    if os.environ.get("CC"):
        candidates.append(shlex.split(os.environ["CC"]))
    import sysconfig

    cc = sysconfig.get_config_var("CC")
    if cc:
        candidates.append(shlex.split(cc)[:1])
    candidates += [["cc"], ["gcc"], ["clang"]]
    for cmd in candidates:
        if cmd and shutil.which(cmd[0]):
            return cmd
    raise BuildError("no C compiler found (cc, gcc or clang on the PATH, or $CC)")


@functools.cache
def _cpu() -> tuple[str, list[str]]:
    """(an identity of this CPU, the flags that tune the code for it)."""
    info = Path("/proc/cpuinfo")
    if sys.platform.startswith("linux") and platform.machine() in ("x86_64", "AMD64") and info.exists():
        wanted = ("vendor_id", "model name", "flags")
        text = info.read_text(errors="replace").splitlines()
        lines = [ln for ln in text if ln.split(":")[0].strip() in wanted]
        return "\n".join(lines[: len(wanted)]), ["-march=native"]
    return f"{platform.machine()} {platform.processor()}", []


def cache_dir() -> Path:
    """The folder the libraries are kept in (created; see the module's docstring)."""
    env = os.environ.get("GEOMASK_CACHE_DIR")
    if env:
        base = Path(env)
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        base = (Path(xdg) if xdg else Path.home() / ".cache") / "geomask"
    user = os.getuid() if hasattr(os, "getuid") else 0
    for folder in (base, Path(tempfile.gettempdir()) / f"geomask-{user}"):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            if os.access(folder, os.W_OK):
                return folder
        except OSError:
            continue
    raise BuildError(f"no writable folder for the compiled kernels (tried {base}); set GEOMASK_CACHE_DIR")


def library_path(dtype: str) -> tuple[Path, list[str]]:
    """(where the library for numpy pixel type ``dtype`` lives, the command that builds it)."""
    ctype, utype = CTYPES[dtype]
    cpu, tune = _cpu()
    cmd = [*compiler(), *_FLAGS, *tune, f"-DGM_T={ctype}", f"-DGM_U={utype}"]
    digest = hashlib.sha256()
    digest.update(SOURCE.read_bytes())
    digest.update("\0".join([*cmd, cpu, platform.machine(), sys.platform]).encode())
    return cache_dir() / f"kernels-{dtype}-{digest.hexdigest()[:20]}.so", cmd


def build(dtype: str) -> Path:
    """The library for numpy pixel type ``dtype``, built now unless already in the cache.

    Raises :class:`BuildError` (with the compiler's first error line) when it cannot be built."""
    path, cmd = library_path(dtype)
    if path.exists():
        return path
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    try:
        done = subprocess.run(
            [*cmd, "-o", str(tmp), str(SOURCE)], capture_output=True, text=True, timeout=300, check=False
        )
        if done.returncode != 0:
            first = next((ln for ln in done.stderr.splitlines() if "error" in ln), done.stderr.strip()[:200])
            raise BuildError(f"the C compiler {cmd[0]} failed on {SOURCE.name}: {first}")
        os.replace(tmp, path)
    except (OSError, subprocess.SubprocessError) as e:
        raise BuildError(f"could not build the C kernels with {cmd[0]}: {e}") from e
    finally:
        tmp.unlink(missing_ok=True)
    return path
