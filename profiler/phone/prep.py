"""Host side of the phone target: SNPE host tools and the per-module DLC cache.

For each module and runtime, :class:`HostPrep` produces what the phone needs:

* the float DLC (``snpe-onnx-to-dlc``) and its ``snpe-dlc-info`` (input names and dims, layer
  names and types);
* for DSP/AIP, a quantized DLC (SNPE 1.x ``snpe-dlc-quantize``; 2.x ``snpe-dlc-quant``, plus
  ``snpe-dlc-graph-prepare`` when HTP SoCs are given) calibrated on random uniform raws or on
  images of ``--calibration-images`` (3-channel 4-D inputs only; other inputs stay random);
* N random benchmark raws and their input list (paths relative to their folder), one folder per
  distinct set of input names and dims (``inputs/in-<hash>/``), shared by the modules that have
  them, on the host and on the phone.

Everything is cached under ``<store's folder>/snpe-cache/<models folder name>-<hash of its
absolute path>/snpe-<sdk version>/`` (``HostOptions.store_dir``, set by the session from the
results store's path, so a container that mounts the models read-only still writes it and
every store in that folder reuses it), or ``<cache_dir>/snpe-<sdk version>/`` when
``PhoneConfig.cache_dir`` is given, or next to the ONNX files when neither is known; each
file has a ``.key.json`` sidecar holding what it was built from (uid,
SDK version, ONNX sha256, options); a file whose sidecar does not match is rebuilt. Files are
written under a temporary name and renamed, so an interrupted build never leaves a file that
looks valid. Host tools run as argument lists (never shell strings) with the environment
``bin/envsetup.sh`` would set, at niceness +10 (``TOOL_NICENESS``: the threads feeding the
phones come first); a failure is a :class:`ToolError` naming the tool, the model and
the tail of the tool's output.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import threading
from concurrent.futures import Future
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

from profiler.files import replacing, write_text
from profiler.files import file_digest
from profiler.errors import ToolError
from profiler.phone.snpe import (DlcInfo, QuantizeOptions, Sdk, diagview_cmd, dlc_info_cmd, images_to_raw,
                           needs_quantized_dlc, onnx_to_dlc_cmd, parse_dlc_info, quantize_cmds,
                           random_inputs, write_input_list)
from profiler.phone.snpe.sdk import HOST_ARCH

KEY_SUFFIX = ".key.json"
TAIL_LINES = 4


def tool_env(sdk: Sdk, base: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
    """The environment ``<sdk>/bin/envsetup.sh`` sets up: SNPE_ROOT, PATH, LD_LIBRARY_PATH, PYTHONPATH."""
    env = dict(os.environ if base is None else base)

    def prepend(key: str, value: str, sep: str = os.pathsep) -> None:
        env[key] = value + (sep + env[key] if env.get(key) else "")

    env["SNPE_ROOT"] = str(sdk.root)
    prepend("PATH", str(sdk.host_bin))
    prepend("LD_LIBRARY_PATH", str(sdk.root / "lib" / HOST_ARCH))
    prepend("PYTHONPATH", str(sdk.root / "lib" / "python"))
    return env


def _tail(text: str, n: int = TAIL_LINES) -> str:
    lines = [ln.strip() for ln in (text or "").strip().splitlines() if ln.strip()]
    return " | ".join(lines[-n:])


# host tools run at this niceness (POSIX): they are throughput work next to the phones, while
# the threads that feed the phones (adb calls) and the adb server must answer at once
TOOL_NICENESS = 10


def _lower_priority(pid: int) -> None:
    try:
        os.setpriority(os.PRIO_PROCESS, pid, min(19, os.getpriority(os.PRIO_PROCESS, 0) + TOOL_NICENESS))
    except (AttributeError, OSError):  # not POSIX, or the tool has exited already
        pass


def run_tool(cmd: Sequence[str], sdk: Sdk, *, about: str, timeout: float) -> str:
    """Run one SDK host tool, at a lower CPU priority (``TOOL_NICENESS``); return its stdout or
    raise ToolError(tool, ``about``, output tail)."""
    tool = Path(cmd[0]).name
    try:
        proc = subprocess.Popen([str(c) for c in cmd], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=tool_env(sdk), stdin=subprocess.DEVNULL)
        _lower_priority(proc.pid)
        try:
            out, err = proc.communicate(timeout=timeout)
        except BaseException:
            proc.kill()
            proc.communicate()
            raise
        proc = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    except FileNotFoundError:
        raise ToolError(f"{cmd[0]}: {tool} not found in the SNPE SDK at {sdk.root} (SNPE {sdk.version}); "
                        f"check --snpe-root / SNPE_ROOT") from None
    except PermissionError:
        raise ToolError(f"{cmd[0]}: not executable; fix the SDK's file permissions (chmod +x)") from None
    except subprocess.TimeoutExpired:
        raise ToolError(f"{tool} timed out after {timeout:g} s on {about}") from None
    except OSError as e:
        raise ToolError(f"{cmd[0]}: cannot run {tool}: {e.strerror}") from None
    if proc.returncode != 0:
        tail = _tail(proc.stderr) or _tail(proc.stdout)
        raise ToolError(f"{tool} failed (exit code {proc.returncode}) on {about}"
                        + (f": {tail}" if tail else "") + f" [SNPE {sdk.version}, {sdk.root}]")
    return proc.stdout


def sha256_file(path: Path) -> str:
    return file_digest(path, "sha256")


def _key_hash(key: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:10]


@dataclass(frozen=True)
class Prepared:
    """What the device side needs for one module on one runtime."""

    uid: str
    stem: str
    dlc: Path                    # float or quantized, as the runtime needs
    info: DlcInfo                # dlc-info of the float DLC (inputs, layer names/types)
    bench_dir: Path              # raws + input_list.txt (relative paths), shared by same-input modules
    quantized: bool
    calibration: Optional[str]   # "random" | "images" | None (not quantized)

    @property
    def input_list(self) -> Path:
        return self.bench_dir / "input_list.txt"

    def bench_files(self) -> List[Path]:
        return sorted(p for p in self.bench_dir.iterdir() if p.is_file() and not p.name.endswith(KEY_SUFFIX))


@dataclass(frozen=True)
class HostOptions:
    """The host-side subset of the phone configuration."""

    quantize: QuantizeOptions = QuantizeOptions()
    quantization_overrides: Optional[str] = None
    calibration_images: Optional[str] = None
    calibration_count: int = 10
    input_count: int = 10
    seed: int = 0
    cache_dir: Optional[str] = None
    store_dir: Optional[str] = None
    tool_timeout_s: float = 1800.0


STORE_CACHE = "snpe-cache"


def store_cache_folder(store_dir: Path, models_dir: Path) -> Path:
    """The cache folder of ``models_dir`` under the store's folder (one per models folder)."""
    absolute = os.path.abspath(models_dir)
    tag = hashlib.sha256(absolute.encode("utf-8")).hexdigest()[:10]
    return Path(store_dir) / STORE_CACHE / f"{os.path.basename(absolute) or 'models'}-{tag}"


class HostPrep:
    """Builds and caches DLCs, dlc-info and raw inputs per module (thread-safe)."""

    def __init__(self, sdk: Sdk, options: HostOptions) -> None:
        self.sdk = sdk
        self.options = options
        self._overrides_sha = sha256_file(Path(options.quantization_overrides)) \
            if options.quantization_overrides else None
        self._images_sig = _folder_signature(Path(options.calibration_images)) \
            if options.calibration_images else None
        self._locks: Dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._onnx_sha: Dict[tuple, str] = {}

    # -- public
    def cache_root(self, item: Mapping[str, Any]) -> Path:
        """Where ``item``'s DLCs and raws are cached (see the module docstring)."""
        version = f"snpe-{self.sdk.version}"
        if self.options.cache_dir:
            return Path(self.options.cache_dir).resolve() / version
        models_dir = Path(os.path.abspath(item["onnx"])).parent
        if self.options.store_dir:
            return store_cache_folder(Path(self.options.store_dir), models_dir) / version
        return models_dir / version

    def prepare(self, item: Mapping[str, Any], runtime: str) -> Prepared:
        """Float DLC (+ quantized DLC for DSP/AIP) and benchmark inputs for ``item``."""
        onnx = Path(item["onnx"])
        if not onnx.is_file():
            raise ToolError(f"{onnx}: ONNX model of {item['uid'][:80]} not found; re-run 'profiler generate'")
        stem = onnx.stem
        root = self.cache_root(item)
        root.mkdir(parents=True, exist_ok=True)
        float_key = {"uid": item["uid"], "sdk": str(self.sdk.version), "onnx_sha256": self._sha(onnx),
                     "overrides_sha256": self._overrides_sha}
        dlc = root / f"{stem}.dlc"
        self._cached(dlc, float_key, lambda tmp: self._convert(onnx, tmp, item["uid"]))
        info_txt = root / f"{stem}.dlcinfo.txt"
        self._cached(info_txt, float_key, lambda tmp: tmp.write_text(
            run_tool(dlc_info_cmd(self.sdk, dlc), self.sdk, about=f"{dlc}", timeout=self.options.tool_timeout_s),
            encoding="utf-8"))
        info = parse_dlc_info(info_txt.read_text(encoding="utf-8"), f"snpe-dlc-info of {dlc}")
        dims = info.input_dims()
        if not dims:
            raise ToolError(f"snpe-dlc-info of {dlc}: no network inputs listed; cannot make raw inputs")
        bench_key = {"dims": dims, "count": self.options.input_count, "seed": self.options.seed}
        bench = root / "inputs" / f"in-{_key_hash(bench_key)}"  # shared by modules with the same inputs
        self._cached_dir(bench, bench_key, lambda tmp: self._bench_inputs(tmp, dims))
        if not needs_quantized_dlc(runtime, self.sdk.version):
            return Prepared(item["uid"], stem, dlc, info, bench, False, None)
        opts = self.options.quantize
        if self.options.quantization_overrides:
            opts = replace(opts, override_params=True)
        calib_kind = self._calibration_kind(dims)
        q_key = {**float_key, "runtime": "AIP" if runtime.upper() == "AIP" else "DSP",
                 "options": asdict(opts), "calibration": calib_kind,
                 "calibration_count": self.options.calibration_count, "images": self._images_sig}
        qdlc = root / f"{stem}.q{_key_hash(q_key)}.dlc"

        def build_q(tmp: Path) -> None:
            calib = root / "calibration" / stem
            calib_key = {"dims": dims, "seed": self.options.seed,
                         **{k: q_key[k] for k in ("calibration", "calibration_count", "images")}}
            self._cached_dir(calib, calib_key, lambda d: self._calibration(d, calib, dims, calib_kind))
            for cmd in quantize_cmds(self.sdk, dlc, tmp, calib / "calibration_list.txt", runtime=runtime,
                                     options=opts):
                run_tool(cmd, self.sdk, about=f"{dlc} ({item['uid'][:80]})", timeout=self.options.tool_timeout_s)
            if not tmp.is_file():
                raise ToolError(f"{Path(cmd[0]).name} reported success but wrote no {tmp.name}")

        self._cached(qdlc, q_key, build_q)
        return Prepared(item["uid"], stem, qdlc, info, bench, True, calib_kind)

    def diagview(self, log: Path) -> str:
        """``snpe-diagview --input_log <log>`` stdout."""
        return run_tool(diagview_cmd(self.sdk, log), self.sdk, about=str(log),
                        timeout=min(self.options.tool_timeout_s, 300.0))

    # -- steps
    def _convert(self, onnx: Path, out: Path, uid: str) -> None:
        cmd = onnx_to_dlc_cmd(self.sdk, onnx, out, quantization_overrides=self.options.quantization_overrides)
        run_tool(cmd, self.sdk, about=f"{onnx} ({uid[:80]})", timeout=self.options.tool_timeout_s)
        if not out.is_file():
            raise ToolError(f"snpe-onnx-to-dlc reported success on {onnx} but wrote no {out.name}")

    def _bench_inputs(self, folder: Path, dims: Mapping[str, Sequence[int]]) -> None:
        samples = random_inputs(folder, dims, self.options.input_count, seed=self.options.seed)
        write_input_list(folder / "input_list.txt", samples, relative_to=folder)

    def _calibration_kind(self, dims: Mapping[str, Sequence[int]]) -> str:
        if self.options.calibration_images and len(dims) == 1:
            only = list(dims.values())[0]
            if len(only) == 4 and int(only[3]) == 3:
                return "images"
        return "random"

    def _calibration(self, folder: Path, final: Path, dims: Mapping[str, Sequence[int]], kind: str) -> None:
        """Calibration raws into ``folder`` (a temporary name of ``final``) and their list."""
        if kind == "images":
            name, d = next(iter(dims.items()))
            paths = images_to_raw(Path(self.options.calibration_images), folder, int(d[1]), int(d[2]),
                                  limit=self.options.calibration_count)
            samples: List[Any] = [{name: p} for p in paths]
        else:
            samples = random_inputs(folder, dims, self.options.calibration_count, seed=self.options.seed + 1)
        # absolute paths in the final folder: the quantizer needs absolute paths
        text_samples = [{n: final / Path(p).name for n, p in s.items()} for s in samples]
        write_input_list(folder / "calibration_list.txt", text_samples)

    # -- cache helpers
    def _sha(self, path: Path) -> str:
        st = path.stat()
        k = (str(path.resolve()), st.st_size, st.st_mtime_ns)
        if k not in self._onnx_sha:
            self._onnx_sha[k] = sha256_file(path)
        return self._onnx_sha[k]

    def _lock(self, path: Path) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(str(path), threading.Lock())

    def _cached(self, path: Path, key: Mapping[str, Any], build: Callable[[Path], None]) -> None:
        sidecar = path.with_name(path.name + KEY_SUFFIX)
        with self._lock(path):
            if path.is_file() and _read_key(sidecar) == _norm(key):
                return
            with replacing(path) as tmp:
                build(tmp)
            _write_key(sidecar, key)

    def _cached_dir(self, folder: Path, key: Mapping[str, Any], build: Callable[[Path], None]) -> None:
        sidecar = folder.with_name(folder.name + KEY_SUFFIX)
        with self._lock(folder):
            if folder.is_dir() and _read_key(sidecar) == _norm(key):
                return
            folder.parent.mkdir(parents=True, exist_ok=True)
            with replacing(folder) as tmp:
                tmp.mkdir()
                build(tmp)
            _write_key(sidecar, key)


class Prefetcher:
    """Prepares the modules of a batch ahead of the phones, on ``workers`` background threads.

    ``prepare(item)`` is started for ``items`` in order, at most ``ahead`` items before the
    phones take them with :meth:`get` (which returns the prepared module or raises that
    module's own error, so a failure stays attributed to its module). With several phones one
    thread per phone keeps up with them (a module's conversion can take longer than its runs);
    ``prepare`` must then be thread-safe (:class:`HostPrep` locks each cache file). An item no
    thread has started yet when a phone asks for it is prepared by the asking thread instead,
    so a phone never waits for the modules queued before its own. :meth:`close` stops the
    threads.
    """

    def __init__(self, prepare: Callable[[Mapping[str, Any]], Prepared], items: Sequence[Mapping[str, Any]],
                 ahead: int, workers: int = 1) -> None:
        self._prepare = prepare
        self._items = list(items)
        self._futures: Dict[int, "Future[Prepared]"] = {id(it): Future() for it in self._items}
        self._released: set = set()
        self._slots = threading.Semaphore(max(1, ahead))
        self._guard = threading.Lock()
        self._next = 0  # index of the next item a thread starts
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, name="phone-prep", daemon=True)
                         for _ in range(max(1, min(workers, len(self._items))))]
        for t in self._threads:
            t.start()

    def _run(self) -> None:
        while True:
            while not self._slots.acquire(timeout=0.1):
                if self._stop.is_set():
                    return
            with self._guard:
                if self._stop.is_set() or self._next >= len(self._items):
                    self._slots.release()
                    return
                item = self._items[self._next]
                self._next += 1
            fut = self._futures[id(item)]
            if not fut.set_running_or_notify_cancel():  # its phone prepared it itself
                self._slots.release()
                continue
            try:
                fut.set_result(self._prepare(item))
            except BaseException as e:  # noqa: BLE001 - handed to the module's phone by get()
                fut.set_exception(e)

    def get(self, item: Mapping[str, Any]) -> Prepared:
        fut = self._futures.get(id(item))
        if fut is None or fut.cancel():
            return self._prepare(item)
        try:
            return fut.result()
        finally:
            with self._guard:
                if id(item) not in self._released:
                    self._released.add(id(item))
                    self._slots.release()

    def close(self) -> None:
        self._stop.set()
        for fut in self._futures.values():
            fut.cancel()
        for t in self._threads:
            t.join()


def _norm(key: Mapping[str, Any]) -> Dict[str, Any]:
    return json.loads(json.dumps(dict(key), sort_keys=True))


def _read_key(path: Path) -> Optional[Dict[str, Any]]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _write_key(path: Path, key: Mapping[str, Any]) -> None:
    write_text(path, json.dumps(dict(key), sort_keys=True))


def _folder_signature(folder: Path) -> str:
    """Names, sizes and mtimes of a folder's files (what calibration images were used)."""
    if not folder.is_dir():
        raise ToolError(f"{folder}: --calibration-images folder does not exist")
    entries = sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir() if p.is_file())
    return hashlib.sha256(json.dumps(entries).encode()).hexdigest()[:16]


__all__ = ["HostOptions", "HostPrep", "Prepared", "Prefetcher", "run_tool", "sha256_file", "tool_env"]
