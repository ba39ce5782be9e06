"""The phone target: SNPE on Snapdragon phones over adb, several phones in parallel.

Per module and runtime (see ``docs/phones.md`` for the user's view):

1. host (:mod:`profiler.phone.prep`): ONNX -> DLC, dlc-info, quantized DLC for DSP/AIP,
   random benchmark raws + input list, all cached under ``<store's folder>/snpe-cache/``;
2. device, once per phone: the SDK's ``snpe-net-run`` and libraries (DSP skels included) for
   the phone's arm64 folder are pushed with ``push_tree`` (md5-compared, so only changes cross
   the cable);
3. device, per module: the DLC and a ``sh`` script (``device_script``) go to
   ``<device root>/models/<module>/``, the raws and their input list to
   ``<device root>/inputs/in-<hash>/`` (once per phone for all modules with those inputs); the
   script runs ``snpe-net-run`` with the runtime's
   flags, ``--perf_profile`` and ``--profiling_level``; it is run ``runs`` times and each run's
   ``output/SNPEDiag*.log`` is pulled and read with the host's ``snpe-diagview``;
4. each run gives one sample per LatencyKey (diagview's values are averages over the input
   list's inferences): ``Total Inference Time``, ``Forward Propagate`` and ``Layers Time``
   (sum of per-layer times without input/data layers). DSP/HTP layer times printed in cycles
   are converted only with a known DSP clock (``dsp_clock_hz``); otherwise ``Layers Time`` is
   left out and the cycles stay in the record's ``layers`` with a note.

The record also carries ``device_state``: serial, perf profile, governor and battery
temperature before and after, and the cool-down wait when ``cooldown_temp_c`` is set. The
reading after a module (taken right after its runs and pull) is the next module's "before" on
the same phone when at most ``STATE_REUSE_S`` old (docs/phones.md, section 5).

The session hands the phones every runtime's batch at once (``streams_batches``): their
(module, runtime) jobs form one queue, sharded over the selected phones with
:func:`profiler.phone.adb.run_sharded` (one worker thread per phone), so no phone idles at the
end of a runtime; records are handed to the generator through a queue as they finish.
A phone that vanishes is retired and its module re-queued to the others; when no phone is left
the remaining modules come back as failed ("device ... vanished"), so ``--resume`` retries them.
A command that fails or times out on a phone that is still connected fails only that module.
"""

from __future__ import annotations

import os
import posixpath
import queue
import re
import shutil
import tempfile
import threading
import time
import weakref
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from profiler.phone.adb import DeviceInfo, DeviceSession, list_devices, open_client, open_session, run_sharded
from profiler.phone.adb.session import (DeviceState, StuckDeviceError, describe_listing, resolve_servers,
                                        server_name)
from profiler.errors import DeviceError, ProfilerError, ResultsError, ToolError
from profiler.phone.prep import STORE_CACHE, HostOptions, HostPrep, Prefetcher, Prepared
from profiler.session import record
from profiler.session.target import Batch, SessionConfig, Target
from profiler.phone.snpe import (DevicePaths, DiagRun, QuantizeOptions, ScriptOutcome, device_artifacts,
                                 device_script, load_overrides, locate_sdk, net_run_cmd, parse_diagview,
                                 parse_script_output, resolve_device_target)
from profiler.phone.snpe.rawinput import rebase_input_list
from profiler.phone.snpe.commands import DIAG_DIR, BUFFER_TYPES, PERF_PROFILES, PROFILING_LEVELS, RUNTIME_BUFFERS
from profiler.keys import LATENCY_KEYS, TOTAL_INFERENCE

PHONE_RUNTIMES = ("CPU", "GPU", "GPU_FP16", "DSP", "AIP")
DEFAULT_PERF_PROFILE = "sustained_high_performance"
DEFAULT_PROFILING_LEVEL = "detailed"
DEFAULT_RUNS = 10
DEFAULT_DEVICE_ROOT = "/data/local/tmp/profiler"
ARM64_ABIS = ("arm64-v8a",)
# the state read after a module is the next module's "before" on that phone when at most this old
# (seconds; older, e.g. after a long wait for the host's prep, it is read again)
STATE_REUSE_S = 30.0
CYCLES_NOTE = ("per-layer times are in DSP/HTP cycles and no DSP clock was given (--dsp-clock), so "
               "'Layers Time' in µs is not recorded; the cycle counts are kept here")


def parse_flavor(name: str, default_buffer: str = "float") -> Tuple[str, str]:
    """``DSP_ub_tf8`` -> ``("DSP", "ub_tf8")``; a plain runtime takes ``default_buffer``.

    Runtimes: CPU, GPU, GPU_FP16, DSP, AIP; buffer suffixes ``_ub_float`` and ``_ub_tf8`` (the
    snpe_bench flavor names). Raises ProfilerError for anything else.
    """
    rt, buffer = name, default_buffer
    for buf in BUFFER_TYPES[1:]:
        if name.endswith("_" + buf):
            rt, buffer = name[: -len(buf) - 1], buf
            break
    if rt not in PHONE_RUNTIMES:
        hint = "; host runtimes need --target host" if rt.startswith(("ORT", "NNABLA")) else ""
        raise ProfilerError(f"--runtime {name}: not a phone runtime (choose from {', '.join(PHONE_RUNTIMES)}, "
                            f"optionally with _ub_float or _ub_tf8, e.g. DSP_ub_tf8{hint})")
    if buffer not in RUNTIME_BUFFERS[rt]:
        raise ProfilerError(f"--runtime {name}: buffer type {buffer} is not valid for {rt} (use "
                            f"{', '.join(RUNTIME_BUFFERS[rt])}; ub_tf8 is for DSP/AIP only)")
    return rt, buffer


def device_dir_name(stem: str) -> str:
    """A device folder name for a model file stem (no characters that need shell quoting)."""
    return re.sub(r"[^A-Za-z0-9_.+\-=@%,]", "_", stem)[:120] or "model"


@dataclass(frozen=True, eq=False)
class _Job:
    """One module on one runtime: what a phone takes from the session's queue."""

    runtime: str   # as given, e.g. DSP_ub_tf8
    rt: str        # DSP
    buffer: str    # ub_tf8
    item: Dict[str, Any]


@dataclass(frozen=True)
class PhoneConfig:
    """Everything the phone target needs besides the session config (see ``docs/phones.md``)."""

    snpe_root: Optional[str] = None            # default $SNPE_ROOT
    adb_host: Optional[str] = None             # default $ANDROID_ADB_SERVER_HOST / 127.0.0.1
    adb_port: Optional[int] = None             # default $ANDROID_ADB_SERVER_PORT / 5037
    adb_servers: Tuple[str, ...] = ()          # HOST:PORT each (else $PROFILER_ADB_SERVERS, else the above)
    devices: Optional[Tuple[str, ...]] = None  # None: every phone adb lists as ready
    runs: int = DEFAULT_RUNS
    perf_profile: str = DEFAULT_PERF_PROFILE
    profiling_level: str = DEFAULT_PROFILING_LEVEL
    buffer: str = "float"
    input_count: int = 10
    cooldown_temp_c: Optional[float] = None
    cooldown_timeout_s: float = 300.0
    cooldown_poll_s: float = 10.0
    dsp_clock_hz: Optional[float] = None
    quantize: QuantizeOptions = field(default_factory=QuantizeOptions)
    quantization_overrides: Optional[str] = None
    calibration_images: Optional[str] = None
    calibration_count: int = 10
    device_root: str = DEFAULT_DEVICE_ROOT
    cache_dir: Optional[str] = None
    seed: int = 0
    tool_timeout_s: float = 1800.0

    def describe(self) -> Dict[str, Any]:
        """The settings recorded in the results store's metadata."""
        q = self.quantize
        return {
            "runs": self.runs, "perf_profile": self.perf_profile, "profiling_level": self.profiling_level,
            "buffer": self.buffer, "input_count": self.input_count, "device_root": self.device_root,
            "cooldown_temp_c": self.cooldown_temp_c,
            "cooldown_timeout_s": self.cooldown_timeout_s if self.cooldown_temp_c is not None else None,
            "dsp_clock_hz": self.dsp_clock_hz,
            "quantization": {
                "act_bitwidth": q.act_bitwidth, "weights_bitwidth": q.weights_bitwidth,
                "bias_bitwidth": q.bias_bitwidth, "use_enhanced_quantizer": q.use_enhanced_quantizer,
                "use_adjusted_weights_quantizer": q.use_adjusted_weights_quantizer, "cle": q.cle,
                "htp_socs": list(q.htp_socs), "overrides": self.quantization_overrides,
                "calibration": (f"images from {self.calibration_images} (3-channel inputs; random otherwise)"
                                if self.calibration_images else "random uniform [-1, 1)"),
                "calibration_count": self.calibration_count,
            },
        }


class PhoneTarget(Target):
    """Snapdragon phones over adb with the SNPE SDK (see the module docstring)."""

    name = "phone"
    streams_batches = True

    def __init__(self, config: PhoneConfig, client: Any = None) -> None:
        self.config = config
        self.sdk = locate_sdk(config.snpe_root)
        self._validate()
        self.device_target = resolve_device_target(self.sdk)
        self.paths = DevicePaths(config.device_root)
        self.host = HostPrep(self.sdk, HostOptions(
            quantize=config.quantize, quantization_overrides=config.quantization_overrides,
            calibration_images=config.calibration_images, calibration_count=config.calibration_count,
            input_count=config.input_count, seed=config.seed, cache_dir=config.cache_dir,
            tool_timeout_s=config.tool_timeout_s))
        self._client = client
        self._clients: Dict[str, Any] = {}          # "host:port" -> AdbClient, in the given order
        self.on_notice: Optional[Callable[[str], None]] = None  # one-line notices (the CLI prints them)
        self._lock = threading.Lock()
        self._serials: List[str] = []
        self._infos: Dict[str, DeviceInfo] = {}
        self._sessions: Dict[str, DeviceSession] = {}
        self._retired: Dict[str, str] = {}
        self._ready: set = set()
        self._staging: Optional[Path] = None
        # per phone: the last state read (after its previous module) and when (time.monotonic)
        self._last_state: Dict[str, Tuple[DeviceState, float]] = {}

    # ------------------------------------------------------------------ configuration
    def _validate(self) -> None:
        c = self.config
        if c.runs < 1:
            raise ProfilerError(f"--runs must be at least 1, not {c.runs}")
        if c.input_count < 1:
            raise ProfilerError(f"--input-count must be at least 1, not {c.input_count}")
        if c.calibration_count < 1:
            raise ProfilerError(f"--calibration-count must be at least 1, not {c.calibration_count}")
        if c.perf_profile not in PERF_PROFILES:
            raise ProfilerError(f"--perf-profile {c.perf_profile}: unknown (choose from {', '.join(PERF_PROFILES)})")
        levels = [lv for lv in PROFILING_LEVELS if lv != "off" and (lv != "linting" or self.sdk.version.snpe2)]
        if c.profiling_level not in levels:
            why = " (off gives no timings)" if c.profiling_level == "off" else ""
            raise ProfilerError(f"--profiling-level {c.profiling_level}: not usable with SNPE {self.sdk.version}"
                                f"{why}; choose from {', '.join(levels)}")
        if c.buffer not in BUFFER_TYPES:
            raise ProfilerError(f"--buffer {c.buffer}: unknown (choose from {', '.join(BUFFER_TYPES)})")
        if c.cooldown_timeout_s < 0:
            raise ProfilerError("--cooldown-timeout must be >= 0")
        try:
            c.quantize.validate()
        except ToolError as e:
            raise ProfilerError(f"quantization options: {e}") from None
        if c.quantization_overrides:
            load_overrides(c.quantization_overrides)  # a clear error now, not per module
        if c.calibration_images and not Path(c.calibration_images).is_dir():
            raise ProfilerError(f"{c.calibration_images}: --calibration-images folder does not exist")

    def check_runtimes(self, runtimes: Sequence[str]) -> None:
        if not runtimes:
            raise ProfilerError("--runtime: give at least one phone runtime (CPU, GPU, GPU_FP16, DSP, AIP)")
        for rt in runtimes:
            parse_flavor(rt, self.config.buffer)

    # ------------------------------------------------------------------ devices
    def _client_or_open(self) -> Any:
        return next(iter(self._open_clients().values()))

    def _open_clients(self) -> Dict[str, Any]:
        """Every adb server of the session ("host:port" -> client); all must answer at the start."""
        if not self._clients:
            if self._client is not None:
                self._clients = {server_name(self._client): self._client}
            else:
                for host, port in resolve_servers(self.config.adb_servers, self.config.adb_host,
                                                  self.config.adb_port):
                    client = open_client(host, port)
                    self._clients[server_name(client)] = client
        return self._clients

    def _notice(self, text: str) -> None:
        if self.on_notice is not None:
            self.on_notice(text)

    def _connect(self) -> None:
        """Select the phones (once): the ones named, or every ready one; check they match.

        With several adb servers a phone is named ``SERIAL@HOST:PORT`` (its identity includes
        its server); ``--devices`` takes either that or a bare serial listed by one server.
        """
        with self._lock:
            if self._serials:
                return
            clients = self._open_clients()
            multi = len(clients) > 1
            found: List[Tuple[str, Any, DeviceInfo]] = []     # (name, client, info)
            listings = []
            for server, client in clients.items():
                infos = list_devices(client)
                listings.append(f"{server}: {describe_listing(infos)}" if multi else describe_listing(infos))
                found += [(f"{i.serial}@{server}" if multi else i.serial, client, i) for i in infos]
            listing = "; ".join(listings)
            if self.config.devices:
                chosen = []
                for wanted in dict.fromkeys(self.config.devices):
                    match = [f for f in found if wanted in (f[0], f[2].serial)]
                    if len(match) > 1:
                        raise DeviceError(f"device {wanted} is listed by several adb servers ({listing}); name it "
                                          "SERIAL@HOST:PORT in --devices")
                    if not match and not multi:
                        open_session(next(iter(clients.values())), wanted)  # not found / unauthorized / offline
                    if not match or not match[0][2].ready:
                        raise DeviceError(f"device {wanted} is not ready ({listing}); check 'profiler devices'")
                    chosen.append(match[0])
            else:
                chosen = [f for f in found if f[2].ready]
                if not chosen:
                    raise DeviceError(f"no phone ready for --target phone ({listing}); connect one with USB "
                                      "debugging enabled (see 'profiler devices' and docs/phones.md)")
            for name, _, info in chosen:
                if info.abi not in ARM64_ABIS:
                    raise DeviceError(f"device {name}: ABI {info.abi or 'unknown'} is not supported (the "
                                      f"SNPE binaries pushed are arm64-v8a); leave it out with --devices")
            kinds = {(i.model, i.soc) for _, _, i in chosen}
            if len(kinds) > 1:
                shown = ", ".join(f"{n}: {i.model}/{i.soc}" for n, _, i in chosen)
                raise ProfilerError(f"the selected phones differ ({shown}); latencies of different phone "
                                    "models or SoCs must not be mixed in one table: choose identical phones "
                                    "with --devices SERIAL,...")
            for name, client, info in chosen:
                self._infos[name] = info
                self._sessions[name] = DeviceSession(client, info.serial, name=name)
            self._serials = [n for n, _, _ in chosen]

    def _ready_serials(self) -> set:
        """Names of the phones some server lists as ready now (a server that is gone lists none)."""
        multi = len(self._clients) > 1
        out = set()
        for server, client in list(self._clients.items()):
            try:
                out |= {f"{i.serial}@{server}" if multi else i.serial
                        for i in client.list() if i.state == "device"}
            except Exception:  # noqa: BLE001 - any adb failure means "cannot tell": treat as gone
                continue
        return out

    def _revive(self) -> None:
        """Take back retired phones that adb lists as ready again (replugged)."""
        with self._lock:
            retired = list(self._retired)
        if not retired:
            return
        ready = self._ready_serials()
        with self._lock:
            for serial in retired:
                if serial in ready:
                    self._retired.pop(serial, None)
                    self._ready.discard(serial)  # check the pushed SDK again
                    self._last_state.pop(serial, None)

    def devices(self) -> List[DeviceInfo]:
        """The selected phones (connects on first use)."""
        self._connect()
        return [self._infos[s] for s in self._serials]

    def use_store(self, store: Path) -> None:
        """Cache DLCs and raws under the store's folder (unless ``cache_dir`` is given); a
        folder this process cannot write is a ProfilerError now, before any phone is touched."""
        folder = Path(os.path.abspath(store)).parent
        if not self.config.cache_dir:
            existing = folder
            while not existing.exists() and existing.parent != existing:
                existing = existing.parent
            if existing.is_dir() and not os.access(existing, os.W_OK | os.X_OK):
                raise ProfilerError(unwritable_store_folder(existing, os.environ.get("PROFILER_DOCKER_IMAGE")))
        self.host.options = replace(self.host.options, store_dir=str(folder))

    def facts(self, runtimes: Sequence[str]) -> Dict[str, Any]:
        infos = self.devices()
        first = infos[0]
        return {
            "target": "phone",
            "device": {"model": first.model, "soc": first.soc, "android_sdk": first.sdk, "abi": first.abi,
                       "manufacturer": first.manufacturer, "phones": len(infos),
                       "serials": [i.serial for i in infos]},
            "devices": {name: {"model": i.model, "soc": i.soc, "android_sdk": i.sdk, "abi": i.abi,
                               "fingerprint": i.props.get("ro.build.fingerprint"),
                               "adb_server": self._sessions[name].server}
                        for name, i in zip(self._serials, infos)},
            "snpe": {"root": str(self.sdk.root), "version": str(self.sdk.version),
                     "device_target": self.device_target.target},
            "phone": {**self.config.describe(), "cache": self._cache_description()},
            "tools": {"snpe": str(self.sdk.version)},
        }

    def _cache_description(self) -> str:
        o = self.host.options
        if o.cache_dir:
            return str(Path(o.cache_dir).resolve() / f"snpe-{self.sdk.version}")
        if o.store_dir:
            return str(Path(o.store_dir) / STORE_CACHE)
        return "next to the ONNX files"

    # ------------------------------------------------------------------ running
    def run_batch(self, runtime: str, items: List[Dict[str, Any]], cfg: SessionConfig) -> Iterator[Dict[str, Any]]:
        """Shard ``items`` over the live phones; yield each record as soon as it exists."""
        for _, rec in self.run_batches([(runtime, items)], cfg):
            yield rec

    def run_batches(self, batches: Sequence[Batch], cfg: SessionConfig) -> Iterator[Tuple[str, Dict[str, Any]]]:
        """Every (runtime, item) of ``batches`` in one queue shared by the live phones, in order;
        yield ``(runtime, record)`` as soon as each exists."""
        jobs = [_Job(runtime, *parse_flavor(runtime, self.config.buffer), item)
                for runtime, items in batches for item in items]
        self._connect()
        self._revive()
        with self._lock:
            live = [self._sessions[s] for s in self._serials if s not in self._retired]
        for s in live:
            s.timeout = cfg.timeout_s
        if not live:
            for job in jobs:
                yield job.runtime, self._gone_record(job.item)
            return
        handoff: "queue.Queue[Tuple[str, Any]]" = queue.Queue()
        stop = threading.Event()
        # host work off the phone threads: module k+1 is prepared while the phone runs k (one
        # prep thread per phone, up to the host's cores: a conversion can take longer than a
        # module's runs), and module k's logs are read (diagview, parse) while it runs k+1
        preps = max(1, min(len(live), os.cpu_count() or 1))
        prefetch = Prefetcher(lambda job: self.host.prepare(job.item, job.rt), jobs, ahead=len(live) + preps,
                              workers=preps)
        post = ThreadPoolExecutor(max_workers=len(live), thread_name_prefix="phone-logs")
        pending: List["Future[Dict[str, Any]]"] = []

        def fn(session: DeviceSession, job: _Job) -> "Future[Dict[str, Any]]":
            try:
                return self._measure(session, job, cfg, prefetch, post)
            except DeviceError as e:
                if not isinstance(e, StuckDeviceError) and session.name in self._ready_serials():
                    # the phone is still there: the command (not the phone) is the problem
                    raise ToolError(f"{e} (the phone is still connected: this module is failed, "
                                    "the phone carries on)") from e
                raise
            except OSError as e:  # host files: cache folder not writable, disk full, ...
                raise ToolError(_host_os_error(e, job.item)) from e

        def on_result(job: _Job, session: DeviceSession, fut: "Future[Dict[str, Any]]") -> None:
            def done(f: "Future[Dict[str, Any]]") -> None:
                try:
                    handoff.put(("record", (job.runtime, f.result())))
                except ProfilerError as e:
                    handoff.put(("record", (job.runtime, record.failed(job.item["uid"], str(e)))))
                except OSError as e:
                    handoff.put(("record", (job.runtime, record.failed(job.item["uid"], _host_os_error(e, job.item)))))
                except BaseException as e:  # noqa: BLE001 - re-raised in the generator's thread
                    handoff.put(("error", e))
            pending.append(fut)
            fut.add_done_callback(done)

        def on_event(kind: str, name: str, job: Optional[_Job], err: ProfilerError) -> None:
            if kind == "retired":
                with self._lock:
                    self._retired[name] = str(err)
            elif kind == "failed" and job is not None:
                handoff.put(("record", (job.runtime, record.failed(job.item["uid"], str(err)))))

        def work() -> None:
            try:
                report = run_sharded(live, jobs, fn, on_result, setup=self._setup_device, stop=stop,
                                     on_event=on_event)
                wait(pending)  # the logs still being read: their records come first
                handoff.put(("end", report))
            except BaseException as e:  # noqa: BLE001 - re-raised in the generator's thread
                handoff.put(("error", e))
            finally:
                prefetch.close()
                post.shutdown(wait=True)

        worker = threading.Thread(target=work, name="phone-shards", daemon=True)
        worker.start()
        try:
            while True:
                try:
                    kind, payload = handoff.get(timeout=0.2)
                except queue.Empty:
                    continue
                if kind == "record":
                    yield payload
                elif kind == "error":
                    raise payload
                else:
                    if not stop.is_set():
                        for job in payload.not_done:
                            yield job.runtime, self._gone_record(job.item)
                    return
        finally:
            stop.set()
            while worker.is_alive():
                worker.join(0.2)

    def _gone_record(self, item: Dict[str, Any]) -> Dict[str, Any]:
        with self._lock:
            gone = dict(self._retired)
        why = "; ".join(gone.values()) or "no phone available"
        return record.failed(item["uid"], f"not measured: no phone left (device {', '.join(gone) or '(none)'} "
                                          f"vanished or failed: {why}); reconnect the phone(s) and re-run "
                                          "with --resume")

    def _sdk_staging(self) -> Path:
        """A local tree ``bin/snpe-net-run`` + ``lib/*.so`` of symlinks into the SDK (made once)."""
        with self._lock:
            if self._staging is None:
                tmp = Path(tempfile.mkdtemp(prefix="profiler-snpe-"))
                weakref.finalize(self, shutil.rmtree, str(tmp), True)
                for src, rel in device_artifacts(self.sdk, self.device_target):
                    dst = tmp / rel
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    os.symlink(src.resolve(), dst)
                self._staging = tmp
            return self._staging

    def _setup_device(self, session: DeviceSession) -> None:
        """Once per phone and session: stop our leftovers; one shell call reads the state and the
        md5s of everything under ``bin/``, ``lib/``, ``inputs/`` and ``models/`` (not the runs'
        outputs), which the session then keeps up to date itself; push snpe-net-run and the
        libraries where their md5 differs."""
        if session.name in self._ready:
            return
        stopped = session.stop_leftovers()   # StuckDeviceError retires the phone
        if stopped:
            self._notice(f"device {session.name}: stopped {len(stopped)} process(es) an earlier profiler session "
                         f"left running there (pid {', '.join(map(str, stopped[:5]))})")
        models = self.paths.models_dir
        state = session.take_inventory([self.paths.bin_dir, self.paths.lib_dir, self.paths.inputs_root, models],
                                       prune=[f"{models}/*/output", f"{models}/*/{DIAG_DIR}"])
        self._last_state[session.name] = (state, time.monotonic())
        staging = self._sdk_staging()
        session.push_tree(staging / "bin", self.paths.bin_dir)
        session.push_tree(staging / "lib", self.paths.lib_dir)
        with self._lock:
            self._ready.add(session.name)

    def _measure(self, session: DeviceSession, job: "_Job", cfg: SessionConfig, prefetch: Prefetcher,
                 post: ThreadPoolExecutor) -> "Future[Dict[str, Any]]":
        """The phone's part of one module; returns the future record (logs read on ``post``).

        On the phone: one push of the files whose md5 differs from what the session knows the
        phone holds (one sync connection, no listing: ``_setup_device``), one shell call that
        runs all ``runs`` (the device script), one pull of all diag logs by name (one sync
        connection) and, beside it on a second adb stream, one shell call reading the state
        after. The state before is the reading taken after the previous module on this phone
        (nothing else runs there in between) when it is at most ``STATE_REUSE_S`` old, else it
        is read now. diagview and parsing happen on ``post`` while the phone goes on.
        """
        start = time.monotonic()
        c = self.config
        item, runtime, rt, buffer = job.item, job.runtime, job.rt, job.buffer
        prep = prefetch.get(job)
        model_dir = self.paths.model_dir(device_dir_name(prep.stem))
        inputs = prep.bench_dir.name   # raws shared by the modules with the same inputs
        from_model = self.paths.inputs_from_model_dir(inputs)
        script_name = f"run_{runtime}.sh"
        cmd = net_run_cmd(self.paths.snpe_net_run, prep.dlc.name, f"{from_model}/{prep.input_list.name}", runtime=rt,
                          version=self.sdk.version, buffer=buffer, perf_profile=c.perf_profile,
                          profiling_level=c.profiling_level)
        script = device_script(cmd, lib_dir=self.paths.lib_dir, model_dir=model_dir, runs=c.runs)
        info = self._infos.get(session.name)
        state: Dict[str, Any] = {"serial": session.serial, "adb_server": session.server,
                                 "model": info.model if info else None,
                                 "soc": info.soc if info else None,
                                 "perf_profile": c.perf_profile, "profiling_level": c.profiling_level,
                                 "buffer": buffer, "dlc": prep.dlc.name, "quantized": prep.quantized}
        if prep.calibration:
            state["calibration"] = prep.calibration
        if c.cooldown_temp_c is not None:
            cool = session.wait_cool(c.cooldown_temp_c, c.cooldown_timeout_s,
                                     poll=max(0.1, min(c.cooldown_poll_s, c.cooldown_timeout_s or 0.1)))
            state["cooldown"] = {"limit_c": c.cooldown_temp_c, "cooled": cool.cooled,
                                 "waited_s": round(cool.waited_s, 1)}
            before = cool.state
        else:
            before = self._take_state(session.name) or session.device_state()
        tmp = Path(tempfile.mkdtemp(prefix="profiler-phone-"))
        try:
            stage, stage_in = tmp / "stage", tmp / "inputs"
            stage.mkdir()
            stage_in.mkdir()
            os.symlink(prep.dlc, stage / prep.dlc.name)
            (stage / script_name).write_text(script, encoding="utf-8")
            for f in prep.bench_files():
                if f.name != prep.input_list.name:
                    os.symlink(f, stage_in / f.name)
            (stage_in / prep.input_list.name).write_text(
                rebase_input_list(prep.input_list.read_text(encoding="utf-8"), from_model), encoding="utf-8")
            # compared with the session's inventory (no shell call); one sync connection
            session.push_trees([(stage_in, self.paths.inputs_dir(inputs)), (stage, model_dir)])
            res = session.shell(["sh", f"{model_dir}/{script_name}"], timeout=cfg.timeout_s * c.runs)
            outcome = parse_script_output(res.output)
            if res.exit_code != 0 or len(outcome.logs) != c.runs:
                raise self._run_error(res, outcome, session.serial, runtime, model_dir)
            locals_ = [tmp / f"run{i + 1}" / posixpath.basename(log) for i, log in enumerate(outcome.logs)]
            reading = _started(session.device_state)  # the state after, read while the logs come over
            try:
                session.pull_files([(f"{model_dir}/{log}", local) for log, local in zip(outcome.logs, locals_)])
            finally:
                wait([reading])
            after = reading.result()
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self._last_state[session.name] = (after, time.monotonic())
        state.update({"governor": before.governor, "battery_temp_c_before": before.battery_temp_c,
                      "battery_temp_c_after": after.battery_temp_c})
        if after.governor != before.governor:
            state["governor_after"] = after.governor

        # one task per log, so idle log readers share a module's logs (the last module's above
        # all, which the session waits for); the record is built when its last log is read
        logs = [post.submit(self._diag_runs, local, prep, runtime, session.serial, i + 1)
                for i, local in enumerate(locals_)]
        rec: "Future[Dict[str, Any]]" = Future()
        left = [len(logs)]
        guard = threading.Lock()

        def one_read(_: "Future[List[DiagRun]]") -> None:
            with guard:
                left[0] -= 1
                if left[0]:
                    return
            try:
                runs = [r for f in logs for r in f.result()]  # the first failing run's error
                rec.set_result(self._record(item, runs, prep, session.serial, state, start))
            except BaseException as e:  # noqa: BLE001 - the module's own failure, for its callback
                rec.set_exception(e)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)

        for f in logs:
            f.add_done_callback(one_read)
        return rec

    def _take_state(self, name: str) -> Optional[DeviceState]:
        """The reading after the previous module on phone ``name`` if recent enough (used once)."""
        last = self._last_state.pop(name, None)
        if last is None or time.monotonic() - last[1] > STATE_REUSE_S:
            return None
        return last[0]

    def _run_error(self, res: Any, outcome: ScriptOutcome, serial: str, runtime: str, model_dir: str) -> ToolError:
        marks = ("PROFILER-RUN-FAILED", "PROFILER-NO-DIAG-LOG", "PROFILER-DIAG-LOG")
        lines = [ln.strip() for ln in res.output.strip().splitlines() if ln.strip() and not ln.startswith(marks)]
        tail = " | ".join(lines[-3:])
        if outcome.missing_log_run is not None:
            return ToolError(f"snpe-net-run on device {serial} wrote no {model_dir}/output/SNPEDiag*.log "
                             f"({runtime}, run {outcome.missing_log_run}); check --profiling-level")
        run = outcome.failed_run or len(outcome.logs) + 1
        code = outcome.failed_status if outcome.failed_status is not None else res.exit_code
        return ToolError(f"snpe-net-run failed on device {serial} (exit code {code}, {runtime}, run {run})"
                         f"{': ' + tail if tail else ''}")

    def _record(self, item: Dict[str, Any], runs: List[DiagRun], prep: Prepared, serial: str,
                state: Dict[str, Any], start: float) -> Dict[str, Any]:
        samples: Dict[str, List[float]] = {}
        for key in LATENCY_KEYS:
            values = [r.latencies().get(key) for r in runs]
            if values and all(v is not None for v in values):
                samples[key] = values
        if TOTAL_INFERENCE not in samples:
            raise ResultsError(f"diagview output of {prep.dlc.name} on {serial}: no '{TOTAL_INFERENCE}' "
                               "in microseconds")
        layers = layers_record(runs)
        extras = {"layers": layers} if layers is not None else {}
        return record.measured(item["uid"], samples, round(time.monotonic() - start, 3),
                               device_state=state, **extras)

    def _diag_runs(self, log: Path, prep: Prepared, runtime: str, serial: str, run: int) -> List[DiagRun]:
        """diagview + parse one pulled log; on failure keep the log and say where."""
        source = f"{log.name} of run {run} on device {serial} ({prep.dlc.name}, {runtime})"
        text = None
        try:
            text = self.host.diagview(log)
            return parse_diagview(text, source, clock_hz=self.config.dsp_clock_hz,
                                  layer_types=prep.info.layer_types())
        except ProfilerError as e:
            try:
                kept = self._keep(log, text, prep, runtime, serial, run)
            except OSError:
                raise e from None
            raise type(e)(f"{e} (log kept as {kept})") from None

    def _keep(self, log: Path, text: Optional[str], prep: Prepared, runtime: str, serial: str, run: int) -> Path:
        folder = prep.dlc.parent / "failed-logs"
        folder.mkdir(parents=True, exist_ok=True)
        dest = folder / f"{prep.stem}-{runtime}-{serial}-run{run}{log.suffix}"
        shutil.copyfile(log, dest)
        if text is not None:
            dest.with_suffix(".diagview.txt").write_text(text, encoding="utf-8")
        return dest


def _started(fn: Callable[[], Any]) -> "Future[Any]":
    """``fn()`` running on a new thread, as a future (an adb call beside another one)."""
    fut: "Future[Any]" = Future()

    def run() -> None:
        if fut.set_running_or_notify_cancel():
            try:
                fut.set_result(fn())
            except BaseException as e:  # noqa: BLE001 - raised by fut.result() in the caller
                fut.set_exception(e)
    threading.Thread(target=run, name="phone-state", daemon=True).start()
    return fut


def unwritable_store_folder(folder: Path, image: Optional[str]) -> str:
    """The one line for a store's folder that this process may not write (pure)."""
    if image:
        return (f"{folder}: the store's folder is not writable by uid {os.getuid()}:{os.getgid()} inside the "
                f"container ({image}); the store and the DLC cache go there: make it writable for that user "
                "or choose the user with --docker-user UID:GID")
    return (f"{folder}: the store's folder is not writable; the store and the DLC cache go there: "
            "choose another --out")


def _host_os_error(e: OSError, item: Dict[str, Any]) -> str:
    where = f"{e.filename}: " if getattr(e, "filename", None) else ""
    return (f"{where}{e.strerror or e} (host side, preparing {item['uid'][:80]}); check that the "
            "store's folder is writable and has space")


def layers_record(runs: Sequence[DiagRun]) -> Optional[Dict[str, Any]]:
    """Per-layer values of every run (by layer index), with their unit; None without layer lines."""
    if not runs or not runs[0].layers:
        return None
    first = runs[0]
    items = []
    for pos, lt in enumerate(first.layers):
        values = []
        for r in runs:
            match = [x for x in r.layers if x.index == lt.index]
            values.append(match[0].value if match else None)
        items.append({"index": lt.index, "name": lt.name, "type": lt.type, "runtime": lt.runtime,
                      "unit": lt.unit or "us", "counted": not lt.is_input, "values": values})
    unit = first.layers_unit
    out: Dict[str, Any] = {"unit": unit, "runs": len(runs), "items": items}
    if unit in ("cycles", "mixed"):
        out["note"] = CYCLES_NOTE
    return out


__all__ = ["DEFAULT_PERF_PROFILE", "DEFAULT_PROFILING_LEVEL", "DEFAULT_RUNS", "PHONE_RUNTIMES", "PhoneConfig",
           "PhoneTarget", "device_dir_name", "layers_record", "parse_flavor"]
